-- e911d schema, version 2: tell every running instance when the directory changes.
--
-- Triggers on the directory tables send NOTIFY on channel 'e911_directory', whoever
-- writes (the directory projector, `e911d directory import`, another system's SQL),
-- so every instance re-evaluates the affected sessions it owns at once instead of at
-- the next scheduled check. NOTIFY is delivered at commit, once per distinct payload
-- per transaction, so a bulk change of one account's locations is one notification.
--
-- Payload: JSON, {"k": kind, "a": account_id} plus, for users, "u": user_id. Kinds:
--   account    the account toggle changed, or the account appeared or went away
--   user       a user's toggle or assigned location changed, or the user came or went
--   directory  a location, IP group or IP group network changed
--   all        a TRUNCATE of a directory table, or ids too long for a NOTIFY payload
--              (8000 bytes; inputs are validated to 256 characters, so only
--              hand-written SQL gets there): every snapshot goes and every session is
--              re-evaluated

CREATE FUNCTION e911_notify(kind text, acct text, usr text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    IF acct IS NULL THEN
        RETURN;
    END IF;
    IF usr IS NULL THEN
        payload := json_build_object('k', kind, 'a', acct)::text;
    ELSE
        payload := json_build_object('k', kind, 'a', acct, 'u', usr)::text;
    END IF;
    IF octet_length(payload) > 7900 THEN
        payload := '{"k": "all"}';
    END IF;
    PERFORM pg_notify('e911_directory', payload);
END;
$$;

-- One row trigger for every table; its argument names the kind. Only users carry a
-- user_id, read through jsonb: PL/pgSQL rejects NEW.user_id on the other tables even
-- in a branch that is not taken. Updates that change
-- nothing a check reads (say, only updated_at) are filtered out by the triggers' WHEN.
CREATE FUNCTION e911_notify_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM e911_notify(kind, OLD.account_id,
                            CASE WHEN kind = 'user' THEN to_jsonb(OLD) ->> 'user_id' END);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM e911_notify(kind, NEW.account_id,
                            CASE WHEN kind = 'user' THEN to_jsonb(NEW) ->> 'user_id' END);
    END IF;
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row trigger: say "everything changed", and bump every version so
-- that scheduled checks reload their snapshots even if the notice is missed.
CREATE FUNCTION e911_notify_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE directory_versions SET version = version + 1;
    PERFORM pg_notify('e911_directory', '{"k": "all"}');
    RETURN NULL;
END;
$$;

CREATE TRIGGER accounts_truncate AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION e911_notify_truncate();
CREATE TRIGGER users_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION e911_notify_truncate();
CREATE TRIGGER locations_truncate AFTER TRUNCATE ON locations
    FOR EACH STATEMENT EXECUTE FUNCTION e911_notify_truncate();
CREATE TRIGGER ip_groups_truncate AFTER TRUNCATE ON ip_groups
    FOR EACH STATEMENT EXECUTE FUNCTION e911_notify_truncate();
CREATE TRIGGER ip_group_networks_truncate AFTER TRUNCATE ON ip_group_networks
    FOR EACH STATEMENT EXECUTE FUNCTION e911_notify_truncate();

CREATE TRIGGER accounts_notify AFTER INSERT OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION e911_notify_row('account');
CREATE TRIGGER accounts_notify_update AFTER UPDATE ON accounts
    FOR EACH ROW WHEN ((OLD.account_id, OLD.e911_recommendations)
                       IS DISTINCT FROM (NEW.account_id, NEW.e911_recommendations))
    EXECUTE FUNCTION e911_notify_row('account');
CREATE TRIGGER users_notify AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION e911_notify_row('user');
CREATE TRIGGER users_notify_update AFTER UPDATE ON users
    FOR EACH ROW WHEN ((OLD.account_id, OLD.user_id, OLD.e911_recommendations,
                        OLD.e911_location_id)
                       IS DISTINCT FROM (NEW.account_id, NEW.user_id, NEW.e911_recommendations,
                                         NEW.e911_location_id))
    EXECUTE FUNCTION e911_notify_row('user');
CREATE TRIGGER locations_notify AFTER INSERT OR UPDATE OR DELETE ON locations
    FOR EACH ROW EXECUTE FUNCTION e911_notify_row('directory');
CREATE TRIGGER ip_groups_notify AFTER INSERT OR UPDATE OR DELETE ON ip_groups
    FOR EACH ROW EXECUTE FUNCTION e911_notify_row('directory');
CREATE TRIGGER ip_group_networks_notify AFTER INSERT OR UPDATE OR DELETE ON ip_group_networks
    FOR EACH ROW EXECUTE FUNCTION e911_notify_row('directory');

-- What a reconnecting listener reads to catch up on the notices it missed: every
-- directory row says when it last changed, whoever changed it and whatever
-- updated_at they wrote, and so does each account's directory version (deletes leave
-- no row behind, but they bump it).
CREATE FUNCTION e911_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION e911_touch();
CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION e911_touch();
CREATE TRIGGER locations_touch BEFORE INSERT OR UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION e911_touch();
CREATE TRIGGER ip_groups_touch BEFORE INSERT OR UPDATE ON ip_groups
    FOR EACH ROW EXECUTE FUNCTION e911_touch();

ALTER TABLE directory_versions ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE TRIGGER directory_versions_touch BEFORE INSERT OR UPDATE ON directory_versions
    FOR EACH ROW EXECUTE FUNCTION e911_touch();

CREATE INDEX accounts_updated_at ON accounts (updated_at);
CREATE INDEX users_updated_at ON users (updated_at);
CREATE INDEX directory_versions_updated_at ON directory_versions (updated_at);

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

CREATE FUNCTION e911_notify_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.account_id = NEW.account_id
       AND OLD.e911_recommendations = NEW.e911_recommendations THEN
        RETURN NULL;  -- nothing a check reads changed
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM e911_notify('account', OLD.account_id, NULL);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM e911_notify('account', NEW.account_id, NULL);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_notify_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.account_id = NEW.account_id AND OLD.user_id = NEW.user_id THEN
        IF OLD.e911_recommendations = NEW.e911_recommendations
           AND OLD.e911_location_id IS NOT DISTINCT FROM NEW.e911_location_id THEN
            RETURN NULL;  -- nothing a check reads changed
        END IF;
        PERFORM e911_notify('user', NEW.account_id, NEW.user_id);
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM e911_notify('user', OLD.account_id, OLD.user_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM e911_notify('user', NEW.account_id, NEW.user_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_notify_directory() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM e911_notify('directory', OLD.account_id, NULL);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM e911_notify('directory', NEW.account_id, NULL);
    END IF;
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row trigger: say "everything changed", and bump every version so
-- that scheduled checks reload their snapshots even if the notice is missed.
CREATE FUNCTION e911_notify_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE directory_versions SET version = version + 1, updated_at = now();
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

CREATE TRIGGER accounts_notify AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION e911_notify_account();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION e911_notify_user();
CREATE TRIGGER locations_notify AFTER INSERT OR UPDATE OR DELETE ON locations
    FOR EACH ROW EXECUTE FUNCTION e911_notify_directory();
CREATE TRIGGER ip_groups_notify AFTER INSERT OR UPDATE OR DELETE ON ip_groups
    FOR EACH ROW EXECUTE FUNCTION e911_notify_directory();
CREATE TRIGGER ip_group_networks_notify AFTER INSERT OR UPDATE OR DELETE ON ip_group_networks
    FOR EACH ROW EXECUTE FUNCTION e911_notify_directory();

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

CREATE OR REPLACE FUNCTION e911_bump_directory_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    acct text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        acct := OLD.account_id;
    ELSE
        acct := NEW.account_id;
    END IF;
    INSERT INTO directory_versions AS v (account_id, version) VALUES (acct, 1)
    ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1, updated_at = now();
    IF TG_OP = 'UPDATE' AND OLD.account_id IS DISTINCT FROM NEW.account_id THEN
        INSERT INTO directory_versions AS v (account_id, version) VALUES (OLD.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1, updated_at = now();
    END IF;
    RETURN NULL;
END;
$$;

CREATE INDEX accounts_updated_at ON accounts (updated_at);
CREATE INDEX users_updated_at ON users (updated_at);
CREATE INDEX directory_versions_updated_at ON directory_versions (updated_at);

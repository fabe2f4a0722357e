-- e911d schema, version 6: networks a user confirmed (docs/spec.md#networks-a-user-confirmed).
--
-- When a user picks their own location in the app from a session on a network that
-- no locating group of the account decides, e911d remembers (account, user, network
-- key) -> that location, and a later check of that user on that network decides from
-- it. The key is the session's most specific signal (daemon/core/network_key.py):
-- key_kind 'bssid' (twelve hex digits), 'switch_port' (chassis and port joined by
-- U+001F) or 'ip_prefix' (a CIDR). Entries belong to one user and are never read for
-- another. No foreign keys, as for the rest of the directory (events arrive in any
-- order across partitions): deleting a user or a location deletes its entries in the
-- same transaction as the delete.

CREATE TABLE confirmed_networks (
    account_id          text NOT NULL,
    user_id             text NOT NULL,
    key_kind            text NOT NULL CHECK (key_kind IN ('bssid', 'switch_port', 'ip_prefix')),
    network_key         text NOT NULL,
    location_id         text NOT NULL,
    first_confirmed_at  timestamptz NOT NULL,
    last_confirmed_at   timestamptz NOT NULL,
    PRIMARY KEY (account_id, user_id, key_kind, network_key)
);
-- The oldest of a user's entries are dropped first when they have too many.
CREATE INDEX confirmed_networks_user_last
    ON confirmed_networks (account_id, user_id, last_confirmed_at);
-- A deleted location takes its entries with it; report networks joins on the key.
CREATE INDEX confirmed_networks_location ON confirmed_networks (account_id, location_id);
CREATE INDEX confirmed_networks_key ON confirmed_networks (account_id, key_kind, network_key);
-- Expiry (confirmed_network_ttl after the last confirmation).
CREATE INDEX confirmed_networks_last ON confirmed_networks (last_confirmed_at);

-- A check reads a user's entries with the user (daemon/store/sql/checks.sql), so they
-- are an input of the decisions checks remember (daemon/core/memo.py): every change
-- bumps the account's user version as a change of the users does (0003), and tells
-- running instances at once as a change of the user does (0002), so the user's
-- sessions are checked again on the entries as they are now. A learned, re-confirmed,
-- expired or forgotten entry therefore never leaves a decision standing that was made
-- without it (or with it).
CREATE FUNCTION e911_confirmed_networks_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_versions AS v (account_id)
    SELECT account_id FROM (
        SELECT account_id FROM new_rows UNION SELECT account_id FROM old_rows) changed
    ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE
    SET version = v.version + 1, bumped_by = EXCLUDED.bumped_by
    WHERE v.bumped_by <> EXCLUDED.bumped_by;
    RETURN NULL;
END;
$$;

CREATE TRIGGER confirmed_networks_versions_insert AFTER INSERT ON confirmed_networks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_user_versions_inserted();
CREATE TRIGGER confirmed_networks_versions_delete AFTER DELETE ON confirmed_networks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_user_versions_deleted();
CREATE TRIGGER confirmed_networks_versions_update AFTER UPDATE ON confirmed_networks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_confirmed_networks_updated();
CREATE TRIGGER confirmed_networks_notify AFTER INSERT OR UPDATE OR DELETE
    ON confirmed_networks
    FOR EACH ROW EXECUTE FUNCTION e911_notify_row('user');
CREATE TRIGGER confirmed_networks_truncate AFTER TRUNCATE ON confirmed_networks
    FOR EACH STATEMENT EXECUTE FUNCTION e911_notify_truncate();

-- Deleting a user or a location deletes its entries, in the same transaction,
-- whoever deletes (the projector, an import with --prune, another system's SQL).
CREATE FUNCTION e911_forget_users_networks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM confirmed_networks c
    USING (SELECT DISTINCT account_id, user_id FROM old_rows) gone
    WHERE c.account_id = gone.account_id AND c.user_id = gone.user_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_forget_locations_networks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM confirmed_networks c
    USING (SELECT DISTINCT account_id, location_id FROM old_rows) gone
    WHERE c.account_id = gone.account_id AND c.location_id = gone.location_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_forget_accounts_networks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM confirmed_networks c
    USING (SELECT DISTINCT account_id FROM old_rows) gone
    WHERE c.account_id = gone.account_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_forget_all_networks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM confirmed_networks;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_forget_networks AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_forget_users_networks();
CREATE TRIGGER locations_forget_networks AFTER DELETE ON locations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_forget_locations_networks();
CREATE TRIGGER accounts_forget_networks AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_forget_accounts_networks();
CREATE TRIGGER users_truncate_networks AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION e911_forget_all_networks();
CREATE TRIGGER locations_truncate_networks AFTER TRUNCATE ON locations
    FOR EACH STATEMENT EXECUTE FUNCTION e911_forget_all_networks();
CREATE TRIGGER accounts_truncate_networks AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION e911_forget_all_networks();

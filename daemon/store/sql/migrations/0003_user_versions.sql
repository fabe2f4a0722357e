-- e911d schema, version 3: a version per account for the rows a check reads besides
-- the directory (the account's toggle and its users' toggles and assigned locations).
--
-- Checks decide from memory when nothing they read changed since the last decision
-- (daemon/memo.py). The NOTIFY of 0002 tells them at once; these versions are the
-- backstop that every instance re-reads once per tick, so a lost notice delays a
-- decision by at most a tick and never leaves a stale one standing. Statement-level
-- triggers: a set-based write of 10,000 users bumps each account once, not per row.
-- And once per transaction: a version only needs to differ between committed states,
-- and updating one row again and again in one transaction leaves a chain of dead
-- versions that every further update walks (measured: 5,000 single-row upserts in
-- one transaction ran at a quarter of the speed). A row is never deleted, so a
-- version never repeats.

CREATE TABLE user_versions (
    account_id  text PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 1,
    bumped_by   xid8 NOT NULL DEFAULT pg_current_xact_id()
);

-- The statement's accounts, in order (no deadlock between two multi-account writes).
-- Plain PL/pgSQL statements: their plans are cached, a SQL function's are not.
CREATE FUNCTION e911_user_versions_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_versions AS v (account_id)
    SELECT DISTINCT account_id FROM new_rows ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE
    SET version = v.version + 1, bumped_by = EXCLUDED.bumped_by
    WHERE v.bumped_by <> EXCLUDED.bumped_by;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_user_versions_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_versions AS v (account_id)
    SELECT DISTINCT account_id FROM old_rows ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE
    SET version = v.version + 1, bumped_by = EXCLUDED.bumped_by
    WHERE v.bumped_by <> EXCLUDED.bumped_by;
    RETURN NULL;
END;
$$;

-- Updates that change nothing a check reads (a replayed upsert: only updated_at) bump
-- nothing: rows are paired by key, and a row whose key changed counts on both sides.
CREATE FUNCTION e911_users_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_versions AS v (account_id)
    SELECT DISTINCT account_id FROM (
        SELECT n.account_id FROM new_rows n
        LEFT JOIN old_rows o ON o.account_id = n.account_id AND o.user_id = n.user_id
        WHERE o.user_id IS NULL
           OR (o.e911_recommendations, o.e911_location_id)
              IS DISTINCT FROM (n.e911_recommendations, n.e911_location_id)
        UNION ALL
        SELECT o.account_id FROM old_rows o
        LEFT JOIN new_rows n ON o.account_id = n.account_id AND o.user_id = n.user_id
        WHERE n.user_id IS NULL) changed
    ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE
    SET version = v.version + 1, bumped_by = EXCLUDED.bumped_by
    WHERE v.bumped_by <> EXCLUDED.bumped_by;
    RETURN NULL;
END;
$$;

CREATE FUNCTION e911_accounts_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_versions AS v (account_id)
    SELECT DISTINCT account_id FROM (
        SELECT n.account_id FROM new_rows n
        LEFT JOIN old_rows o ON o.account_id = n.account_id
        WHERE o.account_id IS NULL
           OR o.e911_recommendations IS DISTINCT FROM n.e911_recommendations
        UNION ALL
        SELECT o.account_id FROM old_rows o
        LEFT JOIN new_rows n ON o.account_id = n.account_id
        WHERE n.account_id IS NULL) changed
    ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE
    SET version = v.version + 1, bumped_by = EXCLUDED.bumped_by
    WHERE v.bumped_by <> EXCLUDED.bumped_by;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_versions_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_user_versions_inserted();
CREATE TRIGGER users_versions_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_user_versions_deleted();
CREATE TRIGGER users_versions_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_users_updated();
CREATE TRIGGER accounts_versions_insert AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_user_versions_inserted();
CREATE TRIGGER accounts_versions_delete AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_user_versions_deleted();
CREATE TRIGGER accounts_versions_update AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION e911_accounts_updated();

-- A TRUNCATE of users or accounts already bumps every directory version (0002), which
-- the memo compares as well.

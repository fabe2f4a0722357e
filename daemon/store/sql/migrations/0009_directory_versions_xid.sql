-- e911d schema, version 9: which transaction last bumped each directory version, so a
-- LISTEN connection that was down can catch up on exactly what it missed.
--
-- user_versions (0003) already records its bumping transaction (bumped_by, an xid8);
-- directory_versions now does too. A listener remembers the oldest transaction still
-- in flight when it last confirmed it had heard everything (pg_snapshot_xmin of a
-- snapshot taken before its own marker NOTIFY, which it then heard back: NOTIFYs are
-- queued in commit order). After a reconnection it reads every account whose version
-- was bumped by that transaction or a later one (daemon/store/missed_changes.py): a
-- transaction id, not a clock, so no time margin and no clock skew; and the oldest
-- in-flight one, not the newest seen, because transaction ids are handed out at a
-- transaction's first write, not at its commit.
--
-- A bump only rewrites the account's one row (nothing is logged per change, so there
-- is nothing to prune), and below it moves once per transaction, so a bulk write
-- costs less than before. Existing rows get the migration's own transaction id:
-- older than any horizon a listener will compare with afterwards.

ALTER TABLE directory_versions ADD COLUMN bumped_by xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE FUNCTION e911_directory_version_bumped() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.bumped_by := pg_current_xact_id();
    RETURN NEW;
END;
$$;

CREATE TRIGGER directory_versions_bumped_by BEFORE UPDATE ON directory_versions
    FOR EACH ROW EXECUTE FUNCTION e911_directory_version_bumped();

-- The row triggers of 0001 bump an account's directory version for every row written,
-- so a bulk write of one account's IP group networks updated the same row again and
-- again in one transaction, each walking the chain of dead versions the previous ones
-- left (5,000 rows: ~0.5 s; 50,000: minutes). As user_versions (0003) does, a
-- version now moves once per transaction: it only needs to differ between committed
-- states.
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
    ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1
    WHERE v.bumped_by <> pg_current_xact_id();
    IF TG_OP = 'UPDATE' AND OLD.account_id IS DISTINCT FROM NEW.account_id THEN
        INSERT INTO directory_versions AS v (account_id, version) VALUES (OLD.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1
        WHERE v.bumped_by <> pg_current_xact_id();
    END IF;
    RETURN NULL;
END;
$$;

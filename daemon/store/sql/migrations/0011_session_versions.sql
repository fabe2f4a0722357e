-- e911d schema, version 11: a version per session, so that the checks write the
-- transitions a chunk decided in a few set-based statements instead of locking every
-- session before reading it (daemon/store/transitions.py).
--
-- A check reads a session's row lock-free, with its version, decides, and writes its
-- raise, resolve or supersede only where the version is still the one it read
-- (compare-and-set in the writing statement). Anything that can change a decision
-- bumps it: every rewrite of the session row (ingest's upsert: a new IP, network
-- signals, an end; the housekeeping expiry; the check's own alert_seq), by the
-- trigger below, so no writer of the row can forget it; and every alert transition
-- written outside the checks (a dismissal), which touches the row first
-- (AlertStore.apply). A session whose version moved is read again and decided again.
-- The open-alert unique index (0001) stays the final guard.
--
-- A new column with a constant default rewrites nothing: existing rows read as 0.

ALTER TABLE sessions ADD COLUMN version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION e911_bump_session_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER sessions_version_bumped BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION e911_bump_session_version();

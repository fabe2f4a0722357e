-- e911d schema, version 11: a version per session, so that the checks write the
-- transitions a chunk decided in a few set-based statements instead of locking every
-- session before reading it (daemon/store/transitions.py).
--
-- A check reads a session's row lock-free, with its version, decides, and writes its
-- raise, resolve or supersede only where the version is still the one it read
-- (compare-and-set in the writing statement). Anything that can change a decision
-- bumps it: every rewrite of the session row that changes one of its columns a check
-- reads (ingest's upsert: a new IP, network signals, an end; the housekeeping expiry;
-- the check's own alert_seq), by the trigger below, so no writer of the row can forget
-- it; and every alert transition written outside the checks (a dismissal), which
-- touches the row first (AlertStore.apply). A rewrite that moves only last_event_at
-- (a keepalive) changes no decision and leaves the version, so a login storm's
-- follow-up events do not send its checks round again. A column a check reads, added
-- later, must join the trigger's list. A session whose version moved is read again
-- and decided again. The open-alert unique index (0001) stays the final guard.
--
-- A new column with a constant default rewrites nothing: existing rows read as 0.

ALTER TABLE sessions ADD COLUMN version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION e911_bump_session_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A statement that moves the version itself (a dismissal's touch) is left as is.
    IF NEW.version = OLD.version
       AND (NEW.account_id, NEW.user_id, NEW.ip, NEW.logged_in_at, NEW.kafka_partition,
            NEW.ended_at, NEW.alert_seq, NEW.bssid, NEW.switch_chassis, NEW.switch_port)
           IS DISTINCT FROM
           (OLD.account_id, OLD.user_id, OLD.ip, OLD.logged_in_at, OLD.kafka_partition,
            OLD.ended_at, OLD.alert_seq, OLD.bssid, OLD.switch_chassis, OLD.switch_port)
    THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER sessions_version_bumped BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION e911_bump_session_version();

-- The sessions-checked record (migration 0005): one row per session, written the first
-- time the session is checked on each UTC day (daemon/checked.py says which are new).

-- name: record_checked
-- first_checked_at stays what the first write of the session set.
INSERT INTO checked_sessions (session_id, account_id, first_checked_at, last_checked_at)
SELECT c.session_id, c.account_id, $3, $3
FROM unnest($1::text[], $2::text[]) AS c(session_id, account_id)
ON CONFLICT (session_id) DO UPDATE SET last_checked_at = excluded.last_checked_at;

-- name: purge_checked
-- Housekeeping: the same retention as resolved alerts.
DELETE FROM checked_sessions WHERE last_checked_at < $1;

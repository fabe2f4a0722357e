-- What a LISTEN connection reads to know how far it has heard, and what it missed
-- while it was down (daemon/store/missed_changes.py, migration 0009).

-- name: mark
-- The keepalive probe: a NOTIFY to the listener itself carrying the oldest transaction
-- in flight now. Every transaction committed before this statement's snapshot was
-- queued before the mark, so hearing the mark back proves all of them were heard.
SELECT pg_notify($1::text, json_build_object(
    'k', 'mark', 't', $2::text,
    'x', pg_snapshot_xmin(pg_current_snapshot())::text)::text);

-- name: horizon
-- The oldest transaction in flight and the next one to be assigned, now, and the
-- server's WAL timeline (the first 8 hex digits of a WAL file name): a promoted
-- standby starts a new one, and its ids may repeat ones the old primary handed out.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
       pg_snapshot_xmax(pg_current_snapshot())::text AS xmax,
       substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS timeline;

-- name: bumped_since
-- Every account whose directory or users/toggles were changed by transaction $1 or a
-- later one: 'directory' for its locations and IP groups, 'account' for the rest.
SELECT 'directory' AS kind, account_id FROM directory_versions
WHERE bumped_by >= $1::text::xid8
UNION ALL
SELECT 'account', account_id FROM user_versions
WHERE bumped_by >= $1::text::xid8;

-- Reads of `e911d directory import --dry-run --impact`, all in the import's one
-- REPEATABLE READ READ ONLY transaction: one snapshot, nothing written. Each takes
-- the file's account ids as $1.

-- name: impact_accounts
SELECT account_id, e911_recommendations FROM accounts WHERE account_id = ANY($1::text[]);

-- name: impact_users
SELECT account_id, user_id, e911_recommendations, e911_location_id FROM users
WHERE account_id = ANY($1::text[]);

-- name: impact_confirmed
-- The networks these accounts' users confirmed and that have not expired ($2: the
-- expiry cutoff, as checks.sql check_rows reads them).
SELECT account_id, user_id, key_kind, network_key, location_id FROM confirmed_networks
WHERE account_id = ANY($1::text[]) AND last_confirmed_at > $2;

-- name: impact_snoozes
-- The dismissals a check honours (alerts.sql snoozed_fingerprints), for every session of
-- these accounts at once: dismissed alerts are few, and resolved_at is indexed.
SELECT DISTINCT session_id, fingerprint FROM alerts
WHERE account_id = ANY($1::text[]) AND reason = 'dismissed' AND resolved_at >= $2;

-- name: impact_sessions
-- Every live session of these accounts with its open alert, only the columns a check
-- decides from (checks.sql check_rows), in no particular order: read through a cursor.
-- Part $3 of $2: the sessions split by a hash of their id, one part per process.
SELECT s.session_id, s.account_id, s.user_id, s.ip, s.bssid, s.switch_chassis,
       s.switch_port, al.alert_id, al.fingerprint,
       al.payload -> 'assigned_location' ->> 'location_id' AS alert_location_id
FROM sessions s
LEFT JOIN alerts al ON al.session_id = s.session_id AND al.resolved_at IS NULL
WHERE s.ended_at IS NULL AND s.account_id = ANY($1::text[])
  AND (hashtext(s.session_id) & 2147483647) % $2::int = $3::int;

-- name: export_snapshot
-- The snapshot of this transaction, for the other processes of the same impact.
SELECT pg_export_snapshot();

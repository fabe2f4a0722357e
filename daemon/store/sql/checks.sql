-- name: lock_check_sessions
-- Taken first, in its own statement (sorted: no deadlock). Under READ COMMITTED a
-- statement that waited for a lock still reads the other tables as they were before
-- it waited; check_rows runs after the locks are held, so it sees whatever the
-- transaction it waited for committed (an alert just raised, resolved or dismissed).
SELECT session_id FROM sessions
WHERE session_id = ANY($1::text[]) AND ended_at IS NULL
ORDER BY session_id
FOR UPDATE;

-- name: check_rows
-- Everything one check needs, with the session's version: read without locks by the
-- set-based path (written only where the version did not move: claim_transitions),
-- or while lock_check_sessions holds the rows (today's design). The
-- user's confirmed networks ($2: the expiry cutoff) come as three parallel arrays,
-- NULL for the users who have none (almost all): one index probe per session.
SELECT s.session_id, s.account_id, s.user_id, host(s.ip) AS ip, s.ip AS ip_value,
       s.logged_in_at,
       s.kafka_partition, s.alert_seq, s.version, s.bssid, s.switch_chassis, s.switch_port,
       (a.account_id IS NOT NULL) AS account_known,
       coalesce(a.e911_recommendations, false) AS account_enabled,
       (u.user_id IS NOT NULL) AS user_known,
       coalesce(u.e911_recommendations, false) AS user_enabled,
       u.e911_location_id,
       coalesce(v.version, 0) AS dir_version,
       coalesce(uv.version, 0) AS user_version,
       al.alert_id, al.fingerprint,
       al.payload -> 'assigned_location' ->> 'location_id' AS alert_location_id,
       cn.kinds AS confirmed_kinds, cn.keys AS confirmed_keys,
       cn.locations AS confirmed_locations
FROM sessions s
LEFT JOIN accounts a ON a.account_id = s.account_id
LEFT JOIN users u ON u.account_id = s.account_id AND u.user_id = s.user_id
LEFT JOIN directory_versions v ON v.account_id = s.account_id
LEFT JOIN user_versions uv ON uv.account_id = s.account_id
LEFT JOIN alerts al ON al.session_id = s.session_id AND al.resolved_at IS NULL
LEFT JOIN LATERAL (
    SELECT array_agg(c.key_kind) AS kinds, array_agg(c.network_key) AS keys,
           array_agg(c.location_id) AS locations
    FROM confirmed_networks c
    WHERE c.account_id = s.account_id AND c.user_id = s.user_id
      AND c.last_confirmed_at > $2
) cn ON true
WHERE s.session_id = ANY($1::text[]) AND s.ended_at IS NULL
ORDER BY s.session_id;

-- name: set_alert_seq
UPDATE sessions SET alert_seq = $2 WHERE session_id = $1;

-- name: input_versions
-- The memo's backstop (daemon/memo.py), once per tick: one row per account that ever
-- had a directory or user change; an account with neither reads as (0, 0).
SELECT coalesce(v.account_id, uv.account_id) AS account_id,
       coalesce(v.version, 0) AS dir_version,
       coalesce(uv.version, 0) AS user_version
FROM directory_versions v
FULL JOIN user_versions uv ON uv.account_id = v.account_id;

-- name: claim_transitions
-- The compare-and-set of the set-based writer (daemon/store/transitions.py): a session
-- is written only if its version is still the one the check read with its inputs
-- (anything that changes a decision input bumps it: migration 0011). The rows it
-- returns are locked until the transaction ends, so the alerts and outbox rows
-- written next for them are written under their row locks, in id order per session,
-- as the relay expects. A row another transaction holds is waited for and then
-- compared again as it committed: moved, it is left out (decided again by the
-- caller). The rows are found by the primary key (= ANY: never a scan of the table,
-- which a join on the unnested ids alone may plan) and locked sorted by session id,
-- the order ingest's lock_sessions and lock_check_sessions take: no deadlock.
WITH claimed AS (
    SELECT s.session_id, u.alert_seq
    FROM sessions s
    JOIN unnest($1::text[], $2::bigint[], $3::int[]) AS u(session_id, version, alert_seq)
      ON u.session_id = s.session_id
    WHERE s.session_id = ANY($1::text[]) AND s.version = u.version AND s.ended_at IS NULL
    ORDER BY s.session_id
    FOR UPDATE OF s
)
UPDATE sessions s SET alert_seq = c.alert_seq
FROM claimed c
WHERE s.session_id = c.session_id
RETURNING s.session_id;

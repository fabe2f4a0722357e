-- name: lock_sessions
-- Sorted so that concurrent transactions lock rows in the same order (no deadlock).
SELECT session_id, account_id, user_id, host(ip) AS ip, logged_in_at, last_event_at,
       kafka_partition, ended_at, alert_seq
FROM sessions
WHERE session_id = ANY($1::text[])
ORDER BY session_id
FOR UPDATE;

-- name: upsert_session
INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at, last_event_at,
                      kafka_partition, ended_at, alert_seq)
VALUES ($1, $2, $3, $4::inet, $5, $6, $7, $8, $9)
ON CONFLICT (session_id) DO UPDATE SET
    account_id = EXCLUDED.account_id,
    user_id = EXCLUDED.user_id,
    ip = EXCLUDED.ip,
    logged_in_at = EXCLUDED.logged_in_at,
    last_event_at = EXCLUDED.last_event_at,
    kafka_partition = EXCLUDED.kafka_partition,
    ended_at = EXCLUDED.ended_at,
    alert_seq = EXCLUDED.alert_seq;

-- name: active_in_partitions
SELECT session_id, logged_in_at, kafka_partition
FROM sessions
WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL;

-- name: expire_sessions
UPDATE sessions SET ended_at = now()
WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL AND last_event_at < $2
RETURNING session_id;

-- name: purge_tombstones
DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1;

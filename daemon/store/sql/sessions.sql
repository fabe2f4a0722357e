-- name: lock_sessions
-- Sorted so that concurrent transactions lock rows in the same order (no deadlock).
SELECT session_id, account_id, user_id, host(ip) AS ip, logged_in_at, last_event_at,
       kafka_partition, ended_at, alert_seq, bssid, switch_chassis, switch_port
FROM sessions
WHERE session_id = ANY($1::text[])
ORDER BY session_id
FOR UPDATE;

-- name: upsert_sessions
-- One statement per batch: the rows arrive as parallel arrays (one element per
-- session, already folded in Python, so no session appears twice).
INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at, last_event_at,
                      kafka_partition, ended_at, alert_seq, bssid, switch_chassis,
                      switch_port)
SELECT s.session_id, s.account_id, s.user_id, s.ip::inet, s.logged_in_at, s.last_event_at,
       s.kafka_partition, s.ended_at, s.alert_seq, s.bssid, s.switch_chassis, s.switch_port
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
            $6::timestamptz[], $7::int[], $8::timestamptz[], $9::int[], $10::text[],
            $11::text[], $12::text[])
     AS s(session_id, account_id, user_id, ip, logged_in_at, last_event_at,
          kafka_partition, ended_at, alert_seq, bssid, switch_chassis, switch_port)
ON CONFLICT (session_id) DO UPDATE SET
    account_id = EXCLUDED.account_id,
    user_id = EXCLUDED.user_id,
    ip = EXCLUDED.ip,
    logged_in_at = EXCLUDED.logged_in_at,
    last_event_at = EXCLUDED.last_event_at,
    kafka_partition = EXCLUDED.kafka_partition,
    ended_at = EXCLUDED.ended_at,
    alert_seq = EXCLUDED.alert_seq,
    bssid = EXCLUDED.bssid,
    switch_chassis = EXCLUDED.switch_chassis,
    switch_port = EXCLUDED.switch_port;

-- name: active_in_partitions
-- One row per partition, its active sessions packed: the ids concatenated in
-- code-point order (COLLATE "C" on UTF-8), their lengths, their login times (binary
-- int4/float8, big-endian) and their positions in login order. The driver decodes a
-- string and three byte strings a partition, and the daemon keeps them as arrays
-- (schedulers/loaded.py): no record, and no Python object, per session.
WITH active AS (
    SELECT kafka_partition, session_id, logged_in_at,
           (row_number() OVER (PARTITION BY kafka_partition
                               ORDER BY session_id COLLATE "C") - 1)::int4 AS pos
    FROM sessions
    WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL
)
SELECT kafka_partition,
       string_agg(session_id, '' ORDER BY pos) AS ids,
       string_agg(int4send(length(session_id)), ''::bytea ORDER BY pos) AS lengths,
       string_agg(float8send(extract(epoch FROM logged_in_at)::float8), ''::bytea
                  ORDER BY pos) AS logged_in_at,
       string_agg(int4send(pos), ''::bytea ORDER BY logged_in_at, pos) AS due_order
FROM active
GROUP BY kafka_partition;

-- name: expire_sessions
UPDATE sessions SET ended_at = now()
WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL AND last_event_at < $2
RETURNING session_id;

-- name: purge_tombstones
DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1;

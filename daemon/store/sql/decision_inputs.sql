-- name: session_inputs
-- What memory needs of each session to decide its checks (daemon/core/memo.py): its
-- row and its open alert. No lock: a change after this read makes the session stale
-- in memory (ingest, a database check), and the database path re-decides anyway.
SELECT s.session_id, s.account_id, s.user_id, host(s.ip) AS ip, s.ip AS ip_value,
       s.bssid, s.switch_chassis, s.switch_port,
       al.fingerprint,
       al.payload -> 'assigned_location' ->> 'location_id' AS alert_location_id
FROM sessions s
LEFT JOIN alerts al ON al.session_id = s.session_id AND al.resolved_at IS NULL
WHERE s.session_id = ANY($1::text[]) AND s.ended_at IS NULL;

-- name: partition_inputs
-- The same for every active session of one partition, when it is assigned.
SELECT s.session_id, s.account_id, s.user_id, host(s.ip) AS ip, s.ip AS ip_value,
       s.bssid, s.switch_chassis, s.switch_port,
       al.fingerprint,
       al.payload -> 'assigned_location' ->> 'location_id' AS alert_location_id
FROM sessions s
LEFT JOIN alerts al ON al.session_id = s.session_id AND al.resolved_at IS NULL
WHERE s.kafka_partition = $1 AND s.ended_at IS NULL;

-- name: account_inputs
-- Each account's toggle and input versions, in the snapshot its users are read in.
SELECT x.account_id,
       (a.account_id IS NOT NULL) AS account_known,
       coalesce(a.e911_recommendations, false) AS account_enabled,
       coalesce(v.version, 0) AS dir_version,
       coalesce(uv.version, 0) AS user_version
FROM unnest($1::text[]) AS x(account_id)
LEFT JOIN accounts a ON a.account_id = x.account_id
LEFT JOIN directory_versions v ON v.account_id = x.account_id
LEFT JOIN user_versions uv ON uv.account_id = x.account_id;

-- name: user_inputs
-- Every user of the accounts, with their confirmed networks not yet expired ($2: the
-- cutoff) as parallel arrays (NULL for almost all) and when the first of them expires.
SELECT u.account_id, u.user_id, u.e911_recommendations, u.e911_location_id,
       cn.kinds AS confirmed_kinds, cn.keys AS confirmed_keys,
       cn.locations AS confirmed_locations, cn.oldest AS confirmed_oldest
FROM users u
LEFT JOIN LATERAL (
    SELECT array_agg(c.key_kind) AS kinds, array_agg(c.network_key) AS keys,
           array_agg(c.location_id) AS locations, min(c.last_confirmed_at) AS oldest
    FROM confirmed_networks c
    WHERE c.account_id = u.account_id AND c.user_id = u.user_id
      AND c.last_confirmed_at > $2
) cn ON true
WHERE u.account_id = ANY($1::text[]);

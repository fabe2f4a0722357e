-- name: check_rows
-- Everything one check needs, read under the session row lock (sorted: no deadlock).
SELECT s.session_id, s.account_id, s.user_id, host(s.ip) AS ip, s.logged_in_at,
       s.kafka_partition, s.alert_seq,
       (a.account_id IS NOT NULL) AS account_known,
       coalesce(a.e911_recommendations, false) AS account_enabled,
       (u.user_id IS NOT NULL) AS user_known,
       coalesce(u.e911_recommendations, false) AS user_enabled,
       u.e911_location_id,
       coalesce(v.version, 0) AS dir_version,
       al.alert_id, al.fingerprint,
       al.payload -> 'assigned_location' ->> 'location_id' AS alert_location_id
FROM sessions s
LEFT JOIN accounts a ON a.account_id = s.account_id
LEFT JOIN users u ON u.account_id = s.account_id AND u.user_id = s.user_id
LEFT JOIN directory_versions v ON v.account_id = s.account_id
LEFT JOIN alerts al ON al.session_id = s.session_id AND al.resolved_at IS NULL
WHERE s.session_id = ANY($1::text[]) AND s.ended_at IS NULL
ORDER BY s.session_id
FOR UPDATE OF s;

-- name: set_alert_seq
UPDATE sessions SET alert_seq = $2 WHERE session_id = $1;

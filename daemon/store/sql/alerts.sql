-- name: resolve_alerts
-- Only alerts still open are resolved; the caller publishes an event for those alone.
UPDATE alerts a SET resolved_at = r.resolved_at, reason = r.reason
FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS r(alert_id, resolved_at, reason)
WHERE a.alert_id = r.alert_id AND a.resolved_at IS NULL
RETURNING a.alert_id, a.raised_at;

-- name: insert_alert
INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition,
                    fingerprint, episode, payload, raised_at,
                    matched_by, ip_group_ids, recommendation_kind)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);

-- name: enqueue
INSERT INTO outbox (kafka_partition, topic, key, value) VALUES ($1, $2, $3, $4);

-- name: open_alerts_of_sessions
SELECT alert_id, session_id, account_id, user_id, kafka_partition
FROM alerts
WHERE session_id = ANY($1::text[]) AND resolved_at IS NULL
ORDER BY session_id;

-- name: open_alert_by_id
SELECT alert_id, session_id, account_id, user_id, kafka_partition
FROM alerts
WHERE alert_id = $1 AND session_id = $2 AND resolved_at IS NULL;

-- name: snoozed_fingerprints
SELECT DISTINCT session_id, fingerprint
FROM alerts
WHERE session_id = ANY($1::text[]) AND reason = 'dismissed' AND resolved_at >= $2;

-- name: count_open
SELECT count(*) FROM alerts WHERE kafka_partition = ANY($1::int[]) AND resolved_at IS NULL;

-- name: purge_resolved
DELETE FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < $1;

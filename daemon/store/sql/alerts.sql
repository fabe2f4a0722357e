-- name: resolve_alerts
-- Only alerts still open are resolved; the caller publishes an event for those alone.
UPDATE alerts a SET resolved_at = r.resolved_at, reason = r.reason
FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS r(alert_id, resolved_at, reason)
WHERE a.alert_id = r.alert_id AND a.resolved_at IS NULL
RETURNING a.alert_id, a.raised_at;

-- name: touch_sessions
-- An alert transition written outside the checks (a dismissal) rewrites its sessions'
-- rows first: the version trigger (migration 0011) bumps them, so a check that read
-- them before writes nothing on them and decides again; and the row lock is taken
-- before any alert's, in the order the checks take them (no deadlock).
UPDATE sessions SET version = version + 1 WHERE session_id = ANY($1::text[]);

-- name: insert_transitions
-- Every raised alert of a chunk and every event (resolutions first, then raises: the
-- order of $13's elements) in one statement. The outbox ids are drawn in that order
-- (ORDER BY ordinality), so a session's resolution precedes the raise superseding it.
WITH raised AS (
    INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition,
                        fingerprint, episode, payload, raised_at,
                        matched_by, ip_group_ids, recommendation_kind)
    SELECT a.alert_id, a.session_id, a.account_id, a.user_id, a.kafka_partition,
           a.fingerprint, a.episode, a.payload, a.raised_at, a.matched_by,
           string_to_array(a.ip_group_ids, E'\x1f'), a.recommendation_kind
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                $7::int[], $8::jsonb[], $9::timestamptz[], $10::text[], $11::text[],
                $12::text[])
         AS a(alert_id, session_id, account_id, user_id, kafka_partition, fingerprint,
              episode, payload, raised_at, matched_by, ip_group_ids, recommendation_kind)
    RETURNING 1
)
INSERT INTO outbox (kafka_partition, topic, key, value)
SELECT e.kafka_partition, e.topic, e.key, e.value
FROM unnest($13::int[], $14::text[], $15::bytea[], $16::bytea[]) WITH ORDINALITY
     AS e(kafka_partition, topic, key, value, n)
ORDER BY e.n;

-- name: insert_alert
-- Today's design, one row a statement (CheckConfig.set_based=False: the benchmarks'
-- baseline).
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

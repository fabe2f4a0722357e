-- Read only by the relay (daemon/services/relay.py); rows are written by AlertStore.

-- name: outbox_batch
-- SKIP LOCKED: during a handover two relays may briefly own a partition; each row is
-- still published by one of them at a time.
SELECT id, topic, key, value
FROM outbox
WHERE kafka_partition = ANY($1::int[])
ORDER BY id
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: outbox_delete
DELETE FROM outbox WHERE id = ANY($1::bigint[]);

-- name: outbox_pending
-- The age comes from the database clock, the same clock that stamped created_at.
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox;

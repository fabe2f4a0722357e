-- Read only by the relay (daemon/services/relay.py); rows are written by AlertStore.

-- name: outbox_batch
-- The oldest pending events of the owned partitions that this relay may publish now,
-- in outbox order (docs/architecture.md#order-on-the-alerts-topic).
--
-- During a handover, or while an instance is paused holding a batch, two relays may
-- read one partition. SKIP LOCKED lets each take the rows nobody holds; but a row is
-- published only when no older row of its key (the user id, the alerts topic's key)
-- is still in the outbox outside this relay's own batch: such a row is held by another
-- relay, which may not have published it yet, so the whole key waits for the next
-- round. A session's rows are inserted under the session's row lock, so they are
-- committed in id order: "no older row left" means every earlier event of the
-- session has been acknowledged by the broker (rows are deleted only after that).
-- The check reads the rows older than the batch's newest through the
-- (kafka_partition, id) index, so a backlog costs the batch, not the outbox.
WITH picked AS MATERIALIZED (
    SELECT id, key FROM outbox
    WHERE kafka_partition = ANY($1::int[])
    ORDER BY id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), heads AS (
    SELECT key, min(id) AS first_id FROM picked GROUP BY key
), held AS (
    SELECT DISTINCT h.key
    FROM heads h
    JOIN outbox o ON o.key = h.key AND o.id < h.first_id
    WHERE o.kafka_partition = ANY($1::int[])
      AND o.id < (SELECT max(id) FROM picked)
)
SELECT o.id, o.topic, o.key, o.value
FROM picked p
JOIN outbox o ON o.id = p.id
WHERE p.key NOT IN (SELECT key FROM held)
ORDER BY o.id;

-- name: outbox_hold_limit
-- For the rest of the relay's transaction: if it stays idle this long (milliseconds,
-- as text) the server ends it. A relay waits for the broker's acknowledgements with
-- its transaction open, and holds its rows' keys meanwhile; an instance frozen there
-- (a stopped process, a paused VM) would hold them until its connection is noticed
-- dead. Ended, its rows go to the next relay; if it wakes up, what it publishes late
-- is a duplicate by id and its delete fails (docs/architecture.md#a-zombie-owner).
SELECT set_config('idle_in_transaction_session_timeout', $1, true);

-- name: outbox_delete
DELETE FROM outbox WHERE id = ANY($1::bigint[]);

-- name: outbox_pending
-- The age comes from the database clock, the same clock that stamped created_at.
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox;

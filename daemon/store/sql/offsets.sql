-- name: store_offsets
-- GREATEST: a late writer from a previous owner can never move an offset backwards.
-- One statement for the batch's partitions (sorted by the caller: a stable lock order).
INSERT INTO consumer_offsets AS c (group_id, topic, partition, next_offset)
SELECT $1, o.topic, o.partition, o.next_offset
FROM unnest($2::text[], $3::int[], $4::bigint[]) AS o(topic, partition, next_offset)
ON CONFLICT (group_id, topic, partition) DO UPDATE
SET next_offset = GREATEST(c.next_offset, EXCLUDED.next_offset), updated_at = now();

-- name: load_offsets
SELECT topic, partition, next_offset FROM consumer_offsets
WHERE group_id = $1 AND topic = ANY($2::text[]);

-- name: lock_offsets
-- Taken first in a batch's transaction: two consumers of one partition (a paused
-- instance resumed after its partitions moved, and their new owner) store batches one
-- after the other, and each sees what the other stored (docs/architecture.md#a-zombie-owner).
SELECT c.topic, c.partition, c.next_offset
FROM consumer_offsets c
JOIN unnest($2::text[], $3::int[]) AS w(topic, partition)
  ON c.topic = w.topic AND c.partition = w.partition
WHERE c.group_id = $1
ORDER BY c.topic, c.partition
FOR UPDATE OF c;

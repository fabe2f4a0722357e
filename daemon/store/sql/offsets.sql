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

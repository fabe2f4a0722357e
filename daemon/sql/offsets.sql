-- name: store_offset
-- GREATEST: a late writer from a previous owner can never move an offset backwards.
INSERT INTO consumer_offsets AS c (group_id, topic, partition, next_offset)
VALUES ($1, $2, $3, $4)
ON CONFLICT (group_id, topic, partition) DO UPDATE
SET next_offset = GREATEST(c.next_offset, EXCLUDED.next_offset), updated_at = now();

-- name: load_offsets
SELECT topic, partition, next_offset FROM consumer_offsets
WHERE group_id = $1 AND topic = ANY($2::text[]);

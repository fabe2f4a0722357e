-- The owned, live sessions past their first check ($first_due: now - initial_delay)
-- of what changed; a session before its first check is left to that check.

-- name: sessions_of_accounts
SELECT session_id
FROM sessions
WHERE account_id = ANY($1::text[]) AND kafka_partition = ANY($2::int[])
  AND ended_at IS NULL AND logged_in_at <= $3;

-- name: sessions_of_partitions
-- After a notice that says "everything changed".
SELECT session_id
FROM sessions
WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL AND logged_in_at <= $2;

-- name: sessions_of_users
SELECT s.session_id
FROM unnest($1::text[], $2::text[]) AS c(account_id, user_id)
JOIN sessions s ON s.account_id = c.account_id AND s.user_id = c.user_id
WHERE s.kafka_partition = ANY($3::int[]) AND s.ended_at IS NULL AND s.logged_in_at <= $4;

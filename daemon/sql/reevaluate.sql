-- name: sessions_of_accounts
-- The owned, live sessions of accounts whose toggle or directory changed.
SELECT session_id, logged_in_at
FROM sessions
WHERE account_id = ANY($1::text[]) AND kafka_partition = ANY($2::int[]) AND ended_at IS NULL;

-- name: sessions_of_partitions
-- Every owned, live session: after a notice that says "everything changed".
SELECT session_id, logged_in_at
FROM sessions
WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL;

-- name: sessions_of_users
-- The owned, live sessions of changed users.
SELECT s.session_id, s.logged_in_at
FROM unnest($1::text[], $2::text[]) AS c(account_id, user_id)
JOIN sessions s ON s.account_id = c.account_id AND s.user_id = c.user_id
WHERE s.kafka_partition = ANY($3::int[]) AND s.ended_at IS NULL;

-- name: changed_since
-- What changed while the listener was not listening (see 0002_notify.sql).
SELECT 'account' AS kind, account_id, NULL::text AS user_id FROM accounts WHERE updated_at >= $1
UNION ALL
SELECT 'directory', account_id, NULL FROM directory_versions WHERE updated_at >= $1
UNION ALL
SELECT 'user', account_id, user_id FROM users WHERE updated_at >= $1;

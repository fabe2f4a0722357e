-- Set-based directory writes: one statement for a run of same-kind events in a batch.
-- The caller keeps only the last event per key (an upsert replaces the whole entity),
-- so no row is touched twice by one statement, and sorts by key (a stable lock order).

-- name: upsert_accounts
INSERT INTO accounts (account_id, e911_recommendations)
SELECT * FROM unnest($1::text[], $2::bool[])
ON CONFLICT (account_id) DO UPDATE
SET e911_recommendations = EXCLUDED.e911_recommendations, updated_at = now();

-- name: upsert_users
INSERT INTO users (account_id, user_id, e911_recommendations, e911_location_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[])
ON CONFLICT (account_id, user_id) DO UPDATE
SET e911_recommendations = EXCLUDED.e911_recommendations,
    e911_location_id = EXCLUDED.e911_location_id,
    updated_at = now();

-- name: set_users_location
-- A location change for a user not yet known creates the user with recommendations
-- off (the default); the next user.upserted fills in the rest.
INSERT INTO users (account_id, user_id, e911_location_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (account_id, user_id) DO UPDATE
SET e911_location_id = EXCLUDED.e911_location_id, updated_at = now();

-- name: delete_users
DELETE FROM users u
USING unnest($1::text[], $2::text[]) AS d(account_id, user_id)
WHERE u.account_id = d.account_id AND u.user_id = d.user_id;

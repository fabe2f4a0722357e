-- Reads for `e911d directory import` / `export`. Every query takes the account ids
-- as $1, or NULL for every account (export without --account). Writes go through
-- the projector (directory.sql), so a file and an event have one write path.

-- name: accounts
SELECT account_id, e911_recommendations FROM accounts
WHERE $1::text[] IS NULL OR account_id = ANY($1::text[]);

-- name: locations
SELECT account_id, location_id, name, address, lat, lon FROM locations
WHERE $1::text[] IS NULL OR account_id = ANY($1::text[]);

-- name: ip_groups
SELECT account_id, ip_group_id, name, location_id, addresses, bssids, switches, locating
FROM ip_groups
WHERE $1::text[] IS NULL OR account_id = ANY($1::text[]);

-- name: ip_group_networks
SELECT account_id, ip_group_id, text(network) AS network FROM ip_group_networks
WHERE $1::text[] IS NULL OR account_id = ANY($1::text[]);

-- name: users
SELECT account_id, user_id, e911_recommendations, e911_location_id FROM users
WHERE $1::text[] IS NULL OR account_id = ANY($1::text[]);

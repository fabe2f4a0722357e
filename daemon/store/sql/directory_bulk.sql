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

-- name: upsert_locations
-- The addresses arrive as JSON texts (one per location; jsonb has no array form
-- that the driver encodes with the connection's codec), cast here.
INSERT INTO locations (account_id, location_id, name, address, lat, lon)
SELECT l.account_id, l.location_id, l.name, l.address::jsonb, l.lat, l.lon
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[])
     AS l(account_id, location_id, name, address, lat, lon)
ON CONFLICT (account_id, location_id) DO UPDATE
SET name = EXCLUDED.name, address = EXCLUDED.address, lat = EXCLUDED.lat,
    lon = EXCLUDED.lon, updated_at = now();

-- name: upsert_ip_groups
-- addresses and bssids (a list per group: ragged, so no two-dimensional array) and
-- switches arrive as JSON texts, one per group.
INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses, bssids,
                       switches, locating)
SELECT g.account_id, g.ip_group_id, g.name, g.location_id,
       ARRAY(SELECT jsonb_array_elements_text(g.addresses::jsonb)),
       ARRAY(SELECT jsonb_array_elements_text(g.bssids::jsonb)),
       g.switches::jsonb, g.locating
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::bool[])
     AS g(account_id, ip_group_id, name, location_id, addresses, bssids, switches, locating)
ON CONFLICT (account_id, ip_group_id) DO UPDATE
SET name = EXCLUDED.name, location_id = EXCLUDED.location_id,
    addresses = EXCLUDED.addresses, bssids = EXCLUDED.bssids,
    switches = EXCLUDED.switches, locating = EXCLUDED.locating, updated_at = now();

-- name: delete_ip_groups_networks
-- An upsert replaces a group's networks: the old ones go, then the new ones are added.
DELETE FROM ip_group_networks n
USING unnest($1::text[], $2::text[]) AS g(account_id, ip_group_id)
WHERE n.account_id = g.account_id AND n.ip_group_id = g.ip_group_id;

-- name: insert_ip_groups_networks
INSERT INTO ip_group_networks (account_id, ip_group_id, network)
SELECT n.account_id, n.ip_group_id, n.network::cidr
FROM unnest($1::text[], $2::text[], $3::text[]) AS n(account_id, ip_group_id, network)
ON CONFLICT DO NOTHING;

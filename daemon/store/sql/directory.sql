-- name: upsert_account
INSERT INTO accounts (account_id, e911_recommendations) VALUES ($1, $2)
ON CONFLICT (account_id) DO UPDATE
SET e911_recommendations = EXCLUDED.e911_recommendations, updated_at = now();

-- name: delete_account_users
DELETE FROM users WHERE account_id = $1;

-- name: delete_account_ip_groups
DELETE FROM ip_groups WHERE account_id = $1;

-- name: delete_account_locations
DELETE FROM locations WHERE account_id = $1;

-- name: delete_account
DELETE FROM accounts WHERE account_id = $1;

-- name: upsert_user
INSERT INTO users (account_id, user_id, e911_recommendations, e911_location_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id, user_id) DO UPDATE
SET e911_recommendations = EXCLUDED.e911_recommendations,
    e911_location_id = EXCLUDED.e911_location_id,
    updated_at = now();

-- name: set_user_location
-- A location change for a user not yet known creates the user with recommendations
-- off (the default); the next user.upserted fills in the rest.
INSERT INTO users (account_id, user_id, e911_location_id) VALUES ($1, $2, $3)
ON CONFLICT (account_id, user_id) DO UPDATE
SET e911_location_id = EXCLUDED.e911_location_id, updated_at = now();

-- name: delete_user
DELETE FROM users WHERE account_id = $1 AND user_id = $2;

-- name: upsert_location
INSERT INTO locations (account_id, location_id, name, address, lat, lon)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (account_id, location_id) DO UPDATE
SET name = EXCLUDED.name, address = EXCLUDED.address, lat = EXCLUDED.lat,
    lon = EXCLUDED.lon, updated_at = now();

-- name: delete_location
DELETE FROM locations WHERE account_id = $1 AND location_id = $2;

-- name: upsert_ip_group
-- bssids and switches are normalised (daemon/core/network.py), switches as a jsonb list
-- of {"chassis_id"} or {"chassis_id", "port_id"}.
INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses, bssids,
                       switches, locating)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (account_id, ip_group_id) DO UPDATE
SET name = EXCLUDED.name, location_id = EXCLUDED.location_id,
    addresses = EXCLUDED.addresses, bssids = EXCLUDED.bssids,
    switches = EXCLUDED.switches, locating = EXCLUDED.locating, updated_at = now();

-- name: delete_ip_group_networks
DELETE FROM ip_group_networks WHERE account_id = $1 AND ip_group_id = $2;

-- name: insert_ip_group_network
INSERT INTO ip_group_networks (account_id, ip_group_id, network) VALUES ($1, $2, $3::cidr)
ON CONFLICT DO NOTHING;

-- name: delete_ip_group
DELETE FROM ip_groups WHERE account_id = $1 AND ip_group_id = $2;

-- name: locations_of
SELECT account_id, location_id, name, address, lat, lon FROM locations
WHERE account_id = ANY($1::text[]);

-- name: ip_groups_of
-- One row per network, and one (network NULL) for a group with none: a group located
-- only by its bssids or switches still loads.
SELECT g.account_id, g.ip_group_id, g.name, g.location_id, g.bssids, g.switches, g.locating,
       text(n.network) AS network
FROM ip_groups g
LEFT JOIN ip_group_networks n
       ON n.account_id = g.account_id AND n.ip_group_id = g.ip_group_id
WHERE g.account_id = ANY($1::text[]);

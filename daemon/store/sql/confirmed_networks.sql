-- Networks a user confirmed (docs/spec.md#networks-a-user-confirmed): learning at
-- ingest, expiry, and `e911d directory confirmed`.

-- name: learning_sessions
-- The live sessions a change in the app may have been made from: the named one (only
-- if it is the user's own, in the same account), else every live session of the user
-- (the caller counts them). `idx` is the change's place in the batch.
SELECT c.idx, s.session_id, s.ip AS ip_value, host(s.ip) AS ip,
       s.bssid, s.switch_chassis, s.switch_port
FROM unnest($1::int[], $2::text[], $3::text[], $4::text[])
     AS c(idx, account_id, user_id, session_id)
JOIN sessions s
  ON s.account_id = c.account_id AND s.user_id = c.user_id AND s.ended_at IS NULL
 AND s.last_event_at > $5
 AND (c.session_id IS NULL OR s.session_id = c.session_id)
ORDER BY c.idx, s.session_id;

-- name: known_users
SELECT u.account_id, u.user_id
FROM users u
JOIN unnest($1::text[], $2::text[]) AS k(account_id, user_id)
  ON u.account_id = k.account_id AND u.user_id = k.user_id;

-- name: upsert_confirmed
-- One row per key (the caller keeps the last confirmation of each). A replayed or
-- older confirmation never overwrites a newer one; a confirmation of another location
-- starts the entry afresh.
INSERT INTO confirmed_networks AS c
    (account_id, user_id, key_kind, network_key, location_id,
     first_confirmed_at, last_confirmed_at)
SELECT a, u, k, n, l, t, t
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
     AS r(a, u, k, n, l, t)
ON CONFLICT (account_id, user_id, key_kind, network_key) DO UPDATE
SET location_id = EXCLUDED.location_id,
    first_confirmed_at = CASE WHEN c.location_id = EXCLUDED.location_id
                              THEN c.first_confirmed_at
                              ELSE EXCLUDED.first_confirmed_at END,
    last_confirmed_at = EXCLUDED.last_confirmed_at
WHERE c.last_confirmed_at <= EXCLUDED.last_confirmed_at
  AND (c.location_id, c.last_confirmed_at)
      IS DISTINCT FROM (EXCLUDED.location_id, EXCLUDED.last_confirmed_at);

-- name: cap_confirmed
-- Keep each given user's newest $3 entries; the oldest go first.
DELETE FROM confirmed_networks c
USING (
    SELECT account_id, user_id, key_kind, network_key,
           row_number() OVER (PARTITION BY account_id, user_id
                              ORDER BY last_confirmed_at DESC, first_confirmed_at DESC,
                                       key_kind, network_key) AS n
    FROM confirmed_networks
    WHERE (account_id, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
) ranked
WHERE ranked.n > $3
  AND c.account_id = ranked.account_id AND c.user_id = ranked.user_id
  AND c.key_kind = ranked.key_kind AND c.network_key = ranked.network_key;

-- name: expire_confirmed
-- Entries last confirmed before the cutoff (confirmed_network_ttl ago), a bounded
-- number per statement.
DELETE FROM confirmed_networks c
USING (
    SELECT account_id, user_id, key_kind, network_key FROM confirmed_networks
    WHERE last_confirmed_at <= $1
    ORDER BY last_confirmed_at
    LIMIT $2
) old
WHERE c.account_id = old.account_id AND c.user_id = old.user_id
  AND c.key_kind = old.key_kind AND c.network_key = old.network_key;

-- name: list_confirmed
-- `e911d directory confirmed`: the entries of an account and/or user (NULL: any).
SELECT c.account_id, c.user_id, c.key_kind, c.network_key, c.location_id,
       l.name AS location_name, c.first_confirmed_at, c.last_confirmed_at
FROM confirmed_networks c
LEFT JOIN locations l ON l.account_id = c.account_id AND l.location_id = c.location_id
WHERE ($1::text IS NULL OR c.account_id = $1) AND ($2::text IS NULL OR c.user_id = $2)
  AND c.last_confirmed_at > $3
ORDER BY c.account_id, c.user_id, c.last_confirmed_at DESC, c.key_kind, c.network_key;

-- name: forget_confirmed
DELETE FROM confirmed_networks
WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR user_id = $2)
RETURNING account_id, user_id, key_kind, network_key;

-- name: user_confirmed
-- explain: one user's entries that have not expired.
SELECT account_id, user_id, key_kind, network_key, location_id,
       first_confirmed_at, last_confirmed_at
FROM confirmed_networks
WHERE account_id = $1 AND user_id = $2 AND last_confirmed_at > $3;

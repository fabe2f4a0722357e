-- Networks nobody configured (migration 0007, docs/spec.md#networks-nobody-configured).

-- name: record_sightings
-- $1 the UTC day; $2..$6 parallel arrays. Idempotent: a session seen again on the
-- same network and day (another instance, a restart, a retry) adds nothing. Sorted,
-- so two writers never wait on each other in opposite orders.
INSERT INTO unconfigured_network_sightings
    (account_id, day, key_kind, network_key, session_id, user_id)
SELECT s.account_id, $1::date, s.key_kind, s.network_key, s.session_id, s.user_id
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     AS s(account_id, key_kind, network_key, session_id, user_id)
ORDER BY 1, 3, 4, 5
ON CONFLICT DO NOTHING;

-- name: summarise_days
-- Housekeeping: the sightings of days before $1 become counts, the busiest $2
-- networks per account and day (by users, then sessions), and are deleted. The counts
-- come from the rows this statement deleted, so two instances summarising at once
-- count each sighting once (the second waits for the first's delete and skips what
-- it deleted). Late sightings of a day already summarised are added to its counts.
WITH gone AS (
    DELETE FROM unconfigured_network_sightings WHERE day < $1::date
    RETURNING account_id, day, key_kind, network_key, user_id
), finished AS (
    SELECT account_id, day, key_kind, network_key,
           count(DISTINCT user_id) AS users, count(*) AS sessions
    FROM gone
    GROUP BY account_id, day, key_kind, network_key
), ranked AS (
    SELECT f.*, row_number() OVER (PARTITION BY account_id, day
                                   ORDER BY users DESC, sessions DESC, key_kind, network_key) AS rank
    FROM finished f
), kept AS (
    INSERT INTO unconfigured_networks (account_id, day, key_kind, network_key, users, sessions)
    SELECT account_id, day, key_kind, network_key, users, sessions
    FROM ranked WHERE rank <= $2
    ORDER BY account_id, day, key_kind, network_key
    ON CONFLICT (account_id, day, key_kind, network_key) DO UPDATE
    SET users = unconfigured_networks.users + excluded.users,
        sessions = unconfigured_networks.sessions + excluded.sessions
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS sightings,
       (SELECT count(*) FROM kept) AS kept,
       (SELECT count(*) FROM ranked WHERE rank > $2) AS dropped;

-- name: purge_unconfigured
-- Housekeeping: the same retention as resolved alerts (days before $1).
DELETE FROM unconfigured_networks WHERE day < $1::date;

-- name: networks
-- `e911d report networks`: per account and network over the UTC days [$2, $3], the
-- most distinct users on one day, the sessions summed over the days (a session
-- seen on two days counts twice), and the days seen; summarised days and the
-- sightings of days not summarised yet alike. $1 the accounts (NULL: all), $4 the
-- fewest users listed.
WITH per_day AS (
    SELECT account_id, day, key_kind, network_key, sum(users) AS users, sum(sessions) AS sessions
    FROM (
        SELECT account_id, day, key_kind, network_key, users, sessions
        FROM unconfigured_networks
        WHERE ($1::text[] IS NULL OR account_id = ANY($1::text[])) AND day BETWEEN $2 AND $3
        UNION ALL
        SELECT account_id, day, key_kind, network_key, count(DISTINCT user_id), count(*)
        FROM unconfigured_network_sightings
        WHERE ($1::text[] IS NULL OR account_id = ANY($1::text[])) AND day BETWEEN $2 AND $3
        GROUP BY account_id, day, key_kind, network_key
    ) AS d
    GROUP BY account_id, day, key_kind, network_key
)
SELECT account_id, key_kind, network_key,
       max(users)::int AS users, sum(sessions)::bigint AS sessions,
       count(*)::int AS days, min(day) AS first_day, max(day) AS last_day
FROM per_day
GROUP BY account_id, key_kind, network_key
HAVING max(users) >= $4;

-- name: confirmations
-- The locations users confirmed on these networks (parallel arrays), with the
-- location's name (NULL: it no longer exists).
SELECT c.account_id, c.key_kind, c.network_key, c.location_id, l.name, count(*)::int AS users
FROM confirmed_networks c
JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(account_id, key_kind, network_key)
  ON k.account_id = c.account_id AND k.key_kind = c.key_kind AND k.network_key = c.network_key
LEFT JOIN locations l ON l.account_id = c.account_id AND l.location_id = c.location_id
GROUP BY c.account_id, c.key_kind, c.network_key, c.location_id, l.name;

-- name: account_toggles
-- What a directory file must repeat of each account (an account entry replaces the
-- whole account): its toggle. Accounts not in the directory are not returned.
SELECT account_id, e911_recommendations FROM accounts WHERE account_id = ANY($1::text[]);

-- name: accounts_without_locations
-- docs/spec.md#what-a-check-decides step 3: accounts where recommendations are on for someone (the account
-- toggle, or any user's own) and that have no location at all. Every check of their
-- users ends `no_locations` and no alert can ever be raised: an administrator must
-- add a location. The accounts without locations (few) are found first; only their
-- users are then probed, by primary key, one row at most each: written as an EXISTS
-- beside the OR, PostgreSQL hashes every enabled user of the directory instead
-- (100k accounts, 1M users: ~60 ms this way, ~300-500 ms that way).
WITH bare AS MATERIALIZED (
    SELECT a.account_id, a.e911_recommendations
    FROM accounts a
    WHERE NOT EXISTS (SELECT 1 FROM locations l WHERE l.account_id = a.account_id)
)
SELECT count(*)::bigint
FROM bare b
WHERE b.e911_recommendations
   OR coalesce(
        (SELECT true FROM users u
         WHERE u.account_id = b.account_id AND u.e911_recommendations
         LIMIT 1),
        false);

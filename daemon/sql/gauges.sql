-- name: accounts_without_locations
-- SPEC §2.3 step 3: accounts where recommendations are on for someone (the account
-- toggle, or any user's own) and that have no location at all. Every check of their
-- users ends `no_locations` and no alert can ever be raised: an administrator must
-- add a location. Both anti-joins use the tables' primary keys (account_id first).
SELECT count(*)::bigint
FROM accounts a
WHERE (
        a.e911_recommendations
        OR EXISTS (
            SELECT 1 FROM users u
            WHERE u.account_id = a.account_id AND u.e911_recommendations
        )
    )
  AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.account_id = a.account_id);

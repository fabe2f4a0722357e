-- Read by `e911d report` (docs/spec.md#administrator-insight), all in one read-only snapshot so the figures agree.
-- $1 is always the account ids (text[]); $2, $3 the window [start, until].
-- Percentiles are not computed here: the durations go back to daemon/report/figures.py.

-- name: all_accounts
-- The directory's accounts and any account id only the history still names (a
-- deleted account's alerts and checked sessions stay until the retention purges them).
SELECT account_id FROM accounts
UNION SELECT account_id FROM alerts
UNION SELECT account_id FROM checked_sessions
ORDER BY account_id;

-- name: known_accounts
-- Of the given ids, those in the directory and those any history row names.
SELECT t AS account_id,
       EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t) AS in_directory,
       (EXISTS (SELECT 1 FROM alerts al WHERE al.account_id = t)
        OR EXISTS (SELECT 1 FROM checked_sessions c WHERE c.account_id = t)) AS in_history
FROM unnest($1::text[]) AS t;

-- name: sessions_checked
-- $2 here is the window start's UTC midnight: a row says on which UTC day a session
-- was last checked, not at what time.
SELECT account_id, count(*) AS n
FROM checked_sessions
WHERE account_id = ANY($1::text[]) AND last_checked_at >= $2 AND last_checked_at <= $3
GROUP BY account_id;

-- name: open_alerts
-- Now, whatever the window: open alerts are never purged.
SELECT account_id, count(*) AS open_alerts, count(DISTINCT user_id) AS users
FROM alerts
WHERE account_id = ANY($1::text[]) AND resolved_at IS NULL
GROUP BY account_id;

-- name: raised
SELECT account_id, count(*) AS n,
       count(*) FILTER (WHERE cardinality(ip_group_ids) = 0) AS no_group
FROM alerts
WHERE account_id = ANY($1::text[]) AND raised_at >= $2 AND raised_at <= $3
GROUP BY account_id;

-- name: resolved
SELECT account_id, reason, count(*) AS n
FROM alerts
WHERE account_id = ANY($1::text[]) AND resolved_at >= $2 AND resolved_at <= $3
GROUP BY account_id, reason;

-- name: fix_durations
-- Seconds from raise to a `location_updated` resolution inside the window.
SELECT account_id, extract(epoch FROM resolved_at - raised_at)::float8 AS seconds
FROM alerts
WHERE account_id = ANY($1::text[]) AND reason = 'location_updated'
  AND resolved_at >= $2 AND resolved_at <= $3;

-- name: top_groups
-- The IP groups that decided the most alerts raised in the window, $4 per account,
-- ties by group id; the group's current name, NULL when it no longer exists.
SELECT account_id, ip_group_id, name, alerts
FROM (
    SELECT a.account_id, g.ip_group_id, ig.name, count(DISTINCT a.alert_id) AS alerts,
           row_number() OVER (
               PARTITION BY a.account_id
               ORDER BY count(DISTINCT a.alert_id) DESC, g.ip_group_id
           ) AS rank
    FROM alerts a
    CROSS JOIN LATERAL unnest(a.ip_group_ids) AS g(ip_group_id)
    LEFT JOIN ip_groups ig ON ig.account_id = a.account_id AND ig.ip_group_id = g.ip_group_id
    WHERE a.account_id = ANY($1::text[]) AND a.raised_at >= $2 AND a.raised_at <= $3
    GROUP BY a.account_id, g.ip_group_id, ig.name
) ranked
WHERE rank <= $4
ORDER BY account_id, rank;

-- Read by `e911d explain`, all in one read-only snapshot so the answer is consistent.

-- name: account
SELECT account_id, e911_recommendations FROM accounts WHERE account_id = $1;

-- name: user
SELECT e911_recommendations, e911_location_id
FROM users
WHERE account_id = $1 AND user_id = $2;

-- name: addresses
-- Each IP group's entries as given (an address, a CIDR, a range): the directory is
-- loaded by the checks' own loader, and explain names the entry behind a network.
SELECT ip_group_id, addresses FROM ip_groups WHERE account_id = $1;

-- name: sessions
-- The user's active sessions with whatever alert each has open (at most one).
SELECT s.session_id, host(s.ip) AS ip, s.logged_in_at,
       al.alert_id, al.fingerprint, al.raised_at
FROM sessions s
LEFT JOIN alerts al ON al.session_id = s.session_id AND al.resolved_at IS NULL
WHERE s.account_id = $1 AND s.user_id = $2 AND s.ended_at IS NULL
ORDER BY s.logged_in_at, s.session_id
LIMIT 100;

-- name: snoozes
-- Mismatches the user dismissed on a session less than dismiss_snooze ago: the daemon
-- does not raise the same fingerprint there again until the snooze ends.
SELECT session_id, fingerprint, max(resolved_at) AS dismissed_at
FROM alerts
WHERE account_id = $1 AND user_id = $2 AND reason = 'dismissed'
  AND resolved_at >= now() - $3::interval
GROUP BY session_id, fingerprint;

-- name: session
-- `explain --session`: the user, IP and network a stored session last reported.
SELECT account_id, user_id, host(ip) AS ip, bssid, switch_chassis, switch_port,
       ended_at IS NOT NULL AS ended
FROM sessions
WHERE session_id = $1;

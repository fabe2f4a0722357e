-- e911d schema, version 5: the alert history administrators report on (docs/spec.md#administrator-insight).
--
-- Alerts are already kept until alert_retention after they resolve; what a report
-- needs of them is filterable columns instead of digging in the payload: the signal
-- that decided (matched_by: bssid, switch_port, switch, ip, geoip, or NULL when
-- nothing located the session), the IP groups that decided (for "which networks
-- produce the most mismatches"), and the recommendation's kind. Rows written before
-- this version are back-filled from their payload; ip_group_ids stays empty for them
-- (the payload never named the groups).
--
-- checked_sessions answers "how many sessions were checked" after the sessions
-- themselves are gone: the checks service upserts a session the first time it checks
-- it on each UTC day (first_checked_at stays, last_checked_at moves to that day's
-- first check), and housekeeping purges rows older than alert_retention.

ALTER TABLE alerts
    ADD COLUMN matched_by text,
    ADD COLUMN ip_group_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN recommendation_kind text;

UPDATE alerts
SET matched_by = payload->>'matched_by',
    recommendation_kind = payload->'recommendation'->>'kind';

-- The report filters by account and time; open alerts by account for "mis-located now".
CREATE INDEX alerts_account_raised_at ON alerts (account_id, raised_at);

CREATE TABLE checked_sessions (
    session_id       text PRIMARY KEY,
    account_id       text NOT NULL,
    first_checked_at timestamptz NOT NULL,
    last_checked_at  timestamptz NOT NULL
);
CREATE INDEX checked_sessions_account_last ON checked_sessions (account_id, last_checked_at);
CREATE INDEX checked_sessions_last ON checked_sessions (last_checked_at);

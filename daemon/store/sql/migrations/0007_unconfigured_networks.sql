-- e911d schema, version 7: networks nobody configured (docs/spec.md#networks-nobody-configured).
--
-- Checks record the networks of checked sessions that no IP group of the account
-- matched (daemon/core/unlocated.py), per account and UTC day, keyed as confirmed
-- networks are (key_kind, network_key: daemon/core/network_key.py).
--
-- unconfigured_network_sightings holds the current day's sightings: one row per
-- session and network, with its user, so that distinct users and sessions are
-- counted exactly whichever instance checked them and however often. It is written
-- off the check path, in bulk, idempotently. Once a UTC day is over (plus an hour for
-- late writes), housekeeping summarises it into unconfigured_networks (counts only,
-- the busiest learning.unconfigured_networks_per_account_day networks of each
-- account) and deletes its sightings: user and session ids are kept about a day.
--
-- unconfigured_networks holds the counts, no ids of people, for alert_retention.

CREATE TABLE unconfigured_network_sightings (
    account_id   text NOT NULL,
    day          date NOT NULL,
    key_kind     text NOT NULL CHECK (key_kind IN ('bssid', 'switch_port', 'ip_prefix')),
    network_key  text NOT NULL,
    session_id   text NOT NULL,
    user_id      text NOT NULL,
    PRIMARY KEY (account_id, day, key_kind, network_key, session_id)
);
-- Summarising and deleting a finished day.
CREATE INDEX unconfigured_network_sightings_day ON unconfigured_network_sightings (day);

CREATE TABLE unconfigured_networks (
    account_id   text NOT NULL,
    day          date NOT NULL,
    key_kind     text NOT NULL CHECK (key_kind IN ('bssid', 'switch_port', 'ip_prefix')),
    network_key  text NOT NULL,
    users        integer NOT NULL CHECK (users >= 0),
    sessions     integer NOT NULL CHECK (sessions >= 0),
    PRIMARY KEY (account_id, day, key_kind, network_key)
);
-- The retention purge.
CREATE INDEX unconfigured_networks_day ON unconfigured_networks (day);

-- e911d schema, version 6: networks a user confirmed (docs/spec.md#networks-a-user-confirmed).
--
-- When a user picks their own location in the app from a session on a network that
-- no locating group of the account decides, e911d remembers (account, user, network
-- key) -> that location, and a later check of that user on that network decides from
-- it. The key is the session's most specific signal (daemon/core/network_key.py):
-- key_kind 'bssid' (twelve hex digits), 'switch_port' (chassis and port joined by
-- U+001F) or 'ip_prefix' (a CIDR). Entries belong to one user and are never read for
-- another. No foreign keys, as for the rest of the directory (events arrive in any
-- order across partitions): deleting a user or a location deletes its entries in the
-- same transaction as the delete.

CREATE TABLE confirmed_networks (
    account_id          text NOT NULL,
    user_id             text NOT NULL,
    key_kind            text NOT NULL CHECK (key_kind IN ('bssid', 'switch_port', 'ip_prefix')),
    network_key         text NOT NULL,
    location_id         text NOT NULL,
    first_confirmed_at  timestamptz NOT NULL,
    last_confirmed_at   timestamptz NOT NULL,
    PRIMARY KEY (account_id, user_id, key_kind, network_key)
);
-- The oldest of a user's entries are dropped first when they have too many.
CREATE INDEX confirmed_networks_user_last
    ON confirmed_networks (account_id, user_id, last_confirmed_at);
-- A deleted location takes its entries with it; report networks joins on the key.
CREATE INDEX confirmed_networks_location ON confirmed_networks (account_id, location_id);
CREATE INDEX confirmed_networks_key ON confirmed_networks (account_id, key_kind, network_key);
-- Expiry (confirmed_network_ttl after the last confirmation).
CREATE INDEX confirmed_networks_last ON confirmed_networks (last_confirmed_at);

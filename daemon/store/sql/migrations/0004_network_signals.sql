-- e911d schema, version 4: network signals beyond IP (docs/spec.md#network-signals).
--
-- A session keeps the network its client last reported (the Wi-Fi access point's
-- BSSID, the switch chassis and port), normalised at decoding (consumers/network.py),
-- so a check after a restart or a handover sees the same signals as before. An IP
-- group may list BSSIDs (twelve hex digits, or eleven and '*') and switches
-- (objects {chassis_id, port_id?}), and may be marked non-locating (a VPN egress, a
-- carrier NAT): its match then means "undetermined". The ip_groups trigger of 0001
-- already bumps the account's directory version on any change to these columns.

ALTER TABLE sessions
    ADD COLUMN bssid text,
    ADD COLUMN switch_chassis text,
    ADD COLUMN switch_port text;

ALTER TABLE ip_groups
    ADD COLUMN bssids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN switches jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN locating boolean NOT NULL DEFAULT true;

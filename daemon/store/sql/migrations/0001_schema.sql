-- e911d schema, version 1.
-- The directory (accounts, users, locations, IP groups), the sessions of every
-- partition, alerts with their outbox, and the consumed offsets: everything that a
-- restart or a partition handover must find again.

CREATE TABLE accounts (
    account_id            text PRIMARY KEY,
    e911_recommendations  boolean NOT NULL DEFAULT false,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- No foreign key to accounts: directory events may arrive in any order across
-- partitions, and a user whose account is unknown is simply "unknown_user".
CREATE TABLE users (
    account_id            text NOT NULL,
    user_id               text NOT NULL,
    e911_recommendations  boolean NOT NULL DEFAULT false,
    e911_location_id      text,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);

CREATE TABLE locations (
    account_id   text NOT NULL,
    location_id  text NOT NULL,
    name         text NOT NULL,
    address      jsonb NOT NULL,
    lat          double precision,
    lon          double precision,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, location_id)
);

CREATE TABLE ip_groups (
    account_id   text NOT NULL,
    ip_group_id  text NOT NULL,
    name         text NOT NULL,
    location_id  text,
    -- the addresses as given (address, CIDR or range), for export and explain
    addresses    text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, ip_group_id)
);

-- One row per exact CIDR; a range is stored as the CIDRs that cover it exactly.
CREATE TABLE ip_group_networks (
    account_id   text NOT NULL,
    ip_group_id  text NOT NULL,
    network      cidr NOT NULL,
    PRIMARY KEY (account_id, ip_group_id, network),
    FOREIGN KEY (account_id, ip_group_id) REFERENCES ip_groups ON DELETE CASCADE
);

-- Bumped by triggers on every change to an account's locations and IP groups, by
-- whatever writes them: checks compare it with their cached snapshot.
CREATE TABLE directory_versions (
    account_id  text PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 1
);

CREATE FUNCTION e911_bump_directory_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    acct text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        acct := OLD.account_id;
    ELSE
        acct := NEW.account_id;
    END IF;
    INSERT INTO directory_versions AS v (account_id, version) VALUES (acct, 1)
    ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1;
    IF TG_OP = 'UPDATE' AND OLD.account_id IS DISTINCT FROM NEW.account_id THEN
        INSERT INTO directory_versions AS v (account_id, version) VALUES (OLD.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER locations_bump AFTER INSERT OR UPDATE OR DELETE ON locations
    FOR EACH ROW EXECUTE FUNCTION e911_bump_directory_version();
CREATE TRIGGER ip_groups_bump AFTER INSERT OR UPDATE OR DELETE ON ip_groups
    FOR EACH ROW EXECUTE FUNCTION e911_bump_directory_version();
CREATE TRIGGER ip_group_networks_bump AFTER INSERT OR UPDATE OR DELETE ON ip_group_networks
    FOR EACH ROW EXECUTE FUNCTION e911_bump_directory_version();

-- A session of a user, owned by whichever instance owns its Kafka partition.
-- ended_at marks a tombstone: a replayed or late login of an ended session is ignored.
CREATE TABLE sessions (
    session_id     text PRIMARY KEY,
    account_id     text NOT NULL,
    user_id        text NOT NULL,
    ip             inet NOT NULL,
    logged_in_at   timestamptz NOT NULL,
    last_event_at  timestamptz NOT NULL,
    kafka_partition integer NOT NULL,
    alert_seq      integer NOT NULL DEFAULT 0,
    last_checked_at timestamptz,
    last_outcome   text,
    ended_at       timestamptz
);
CREATE INDEX sessions_partition ON sessions (kafka_partition) WHERE ended_at IS NULL;
CREATE INDEX sessions_user ON sessions (account_id, user_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_last_event ON sessions (last_event_at);

CREATE TABLE alerts (
    alert_id       text PRIMARY KEY,
    session_id     text NOT NULL,
    account_id     text NOT NULL,
    user_id        text NOT NULL,
    kafka_partition integer NOT NULL,
    fingerprint    text NOT NULL,
    episode        integer NOT NULL,
    payload        jsonb NOT NULL,
    raised_at      timestamptz NOT NULL,
    resolved_at    timestamptz,
    reason         text
);
-- At most one open alert per session, enforced by the database.
CREATE UNIQUE INDEX alerts_open_per_session ON alerts (session_id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_session_fingerprint ON alerts (session_id, fingerprint, resolved_at);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

-- Alert events decided but not yet acknowledged by the broker (transactional outbox).
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    kafka_partition integer NOT NULL,
    topic           text NOT NULL,
    key             bytea NOT NULL,
    value           bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_partition ON outbox (kafka_partition, id);

-- The next offset to read per consumed partition, written in the same transaction
-- as the state the consumed events produced.
CREATE TABLE consumer_offsets (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

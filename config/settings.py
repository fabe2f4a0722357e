"""Typed settings.

Every section forbids unknown keys, so a typo in an environment variable or a TOML
file stops the daemon at start with the offending key named, instead of silently
running on a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from e911d.config.dsn import check_dsn
from e911d.config.instance_id import check_group_instance_id, default_group_instance_id
from e911d.config.secret_settings import (
    FILE_SUFFIX,
    read_secret,
    secret_fields,
    take_secret_files,
)
from e911d.config.sources import ENV_PREFIX


def _cased(convert: str) -> BeforeValidator:
    """Enum-like values are matched whatever their case, then stored in the canonical one
    (``INFO`` is ``info``; ``sasl_ssl`` is ``SASL_SSL``)."""

    def normalise(value: object) -> object:
        return getattr(value, convert)() if isinstance(value, str) else value

    return BeforeValidator(normalise)


SecurityProtocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], _cased("upper")
]
SaslMechanism = Annotated[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], _cased("upper")]
LogFormat = Annotated[Literal["auto", "json", "console"], _cased("lower")]
LogLevel = Annotated[Literal["debug", "info", "warning", "error"], _cased("lower")]


# docs/spec.md#running-e911d: a stop, from SIGTERM to exit, takes at most this long.
STOP_SECONDS: Final = 10.0
# Closing the clients once the drain is over: the consumer leaves its group (<= 3 s),
# then the LISTEN connection, the producer and the pool close, usually in well under 1 s.
CLOSE_SECONDS: Final = 3.0
# So in-flight work may be given at most this long (shutdown_timeout_seconds).
MAX_SHUTDOWN_TIMEOUT_SECONDS: Final = STOP_SECONDS - CLOSE_SECONDS


class ConfigError(Exception):
    """Raised when settings cannot be loaded; the message names every bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        return take_secret_files(cls, data)

    @field_validator("*")
    @classmethod
    def _secret_file_readable(cls, value: Any, info: ValidationInfo) -> Any:
        # Reported here, at the x_file key, so the error names what set the path.
        name = info.field_name or ""
        secret = name.endswith(FILE_SUFFIX) and name[: -len(FILE_SUFFIX)] in secret_fields(cls)
        if secret and value is not None:
            read_secret(value)
        return value


class TopicSettings(_Section):
    session_events: str = Field(default="e911.session-events", min_length=1, max_length=249)
    directory_events: str = Field(default="e911.directory-events", min_length=1, max_length=249)
    alerts: str = Field(default="e911.alerts", min_length=1, max_length=249)
    dead_letter: str = Field(default="e911.dead-letter", min_length=1, max_length=249)

    @model_validator(mode="after")
    def _one_role_per_topic(self) -> TopicSettings:
        # Two roles on one topic would feed the daemon its own alerts as session events,
        # or its dead letters back as input, and dead-letter them again, for ever.
        seen: dict[str, str] = {}
        for role in type(self).model_fields:
            name = getattr(self, role)
            if name in seen:
                first, this = (f"E911_KAFKA__TOPICS__{r.upper()}" for r in (seen[name], role))
                raise ValueError(f"{first} and {this} are both {name!r}: one topic per role")
            seen[name] = role
        return self


class KafkaSettings(_Section):
    bootstrap_servers: str = Field(default="localhost:9092", min_length=1)
    group_id: str = Field(default="e911d", min_length=1)
    # Static group membership: a restarted instance takes its partitions straight back.
    # Default: the pod's name in a StatefulSet pod, else unset; "" turns it off
    # (config/instance_id.py says why).
    group_instance_id: str | None = Field(default_factory=default_group_instance_id)
    client_id: str = Field(default="e911d", min_length=1)
    source: str = Field(default="urn:e911d", min_length=1)
    topics: TopicSettings = TopicSettings()
    create_topics: bool = True
    topic_partitions: int = Field(default=12, ge=1, le=10_000)
    # None: the broker's own default (default.replication.factor), so a first start
    # on a multi-broker cluster does not quietly create single-replica topics.
    replication_factor: int | None = Field(default=None, ge=1, le=16)
    max_event_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)
    # Each poll's record limit adapts to the batch's store time (consumers/batch_size.py):
    # it grows while stores take under batch_target_seconds, halves when one takes
    # longer, within [poll_min_records, poll_max_records]; a target of 0 keeps every
    # poll at poll_max_records. A min above the max is taken as the max.
    poll_max_records: int = Field(default=10_000, ge=1, le=100_000)
    poll_min_records: int = Field(default=200, ge=1, le=100_000)
    batch_target_seconds: float = Field(default=0.5, ge=0, le=60)
    # Read and decode the next poll while a batch is stored (one batch ahead at most).
    pipeline: bool = True
    poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    # Bound on the consumer's fetch buffer (one response per partition at most).
    fetch_max_bytes: int = Field(default=16 * 1_048_576, ge=1_048_576, le=1_073_741_824)
    # A batch not stored after this long pauses fetching until it is (database slow).
    pause_after_seconds: float = Field(default=5.0, gt=0, le=600)
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    # TLS (security_protocol SSL or SASL_SSL): the CA that signed the brokers'
    # certificates (None: the system's trust store) and an optional client certificate.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: Path | None = None
    ssl_check_hostname: bool = True
    request_timeout_ms: int = Field(default=30_000, ge=1_000, le=600_000)
    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    # How long the broker waits for every member to rejoin in a rebalance, and so how
    # long it may hold a JoinGroup; a consumer stopped meanwhile waits that out to leave
    # the group (consumers/loop.py ConsumerLoop.close). 5 s: with the default session
    # timeout the wait fits the stop's budget.
    rebalance_timeout_ms: int = Field(default=5_000, ge=1_000, le=300_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100, le=60_000)
    enable_idempotence: bool = False

    _instance_id = field_validator("group_instance_id")(check_group_instance_id)

    @model_validator(mode="after")
    def _security_consistent(self) -> KafkaSettings:
        # Each of these would otherwise surface as an obscure client error at start,
        # or as a plaintext password sent to a broker that expects none.
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and self.sasl_mechanism is None:
            raise ValueError(
                f"security_protocol={self.security_protocol} needs E911_KAFKA__SASL_MECHANISM "
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if self.sasl_mechanism is not None and not sasl:
            raise ValueError(
                f"E911_KAFKA__SASL_MECHANISM is set but security_protocol="
                f"{self.security_protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        unused = [
            f"E911_KAFKA__SASL_{name}"
            for name, value in (("USERNAME", self.sasl_username), ("PASSWORD", self.sasl_password))
            if value is not None and not sasl
        ]
        if unused:
            # Credentials that are never sent: the operator meant SASL and gets none.
            raise ValueError(
                f"{' and '.join(unused)} set but security_protocol={self.security_protocol} "
                "sends no credentials: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"sasl_mechanism={self.sasl_mechanism} needs E911_KAFKA__SASL_USERNAME "
                "and E911_KAFKA__SASL_PASSWORD"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("E911_KAFKA__SSL_KEYFILE is set without E911_KAFKA__SSL_CERTFILE")
        if self.ssl_key_password is not None and self.ssl_certfile is None:
            raise ValueError("E911_KAFKA__SSL_KEY_PASSWORD is set without E911_KAFKA__SSL_CERTFILE")
        return self

    @model_validator(mode="after")
    def _join_answered_in_time(self) -> KafkaSettings:
        # aiokafka waits for a JoinGroup answer no longer than the request timeout: a
        # join the broker holds longer would fail and be retried, rebalance after
        # rebalance.
        if self.rebalance_timeout_ms >= self.request_timeout_ms:
            raise ValueError(
                f"E911_KAFKA__REBALANCE_TIMEOUT_MS ({self.rebalance_timeout_ms}) must be below "
                f"E911_KAFKA__REQUEST_TIMEOUT_MS ({self.request_timeout_ms}): the broker may "
                "hold a JoinGroup that long, and the client gives up on a request after "
                "the request timeout"
            )
        return self

    @model_validator(mode="after")
    def _heartbeats_fit_the_session(self) -> KafkaSettings:
        # Kafka's advice for heartbeat.interval.ms: no more than a third of the session
        # timeout, so that one late heartbeat does not cost an instance its partitions.
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"E911_KAFKA__HEARTBEAT_INTERVAL_MS ({self.heartbeat_interval_ms}) must be at "
                f"most a third of E911_KAFKA__SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )
        return self


class PostgresSettings(_Section):
    dsn: SecretStr = SecretStr("postgresql://postgres@localhost:5432/e911d")
    dsn_file: Path | None = None
    pool_min_size: int = Field(default=2, ge=1, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=200)
    # A silent database (a network black hole) is noticed only by timeouts: each call
    # waits at most command_timeout_seconds for its answer, and the server itself ends
    # a statement after statement_timeout_seconds (0: the server's own setting), as the
    # client's cancel may not get through.
    command_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    statement_timeout_seconds: float = Field(default=30.0, ge=0, le=3_600)
    # Waiting for a pooled connection (all busy, or stuck in a silent database).
    acquire_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Opening a connection; each host of a multi-host DSN in turn shares it.
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # TCP keepalives on every connection, both ends: the first probe after this long
    # idle, then 3 probes a third of it apart; unacknowledged data gives up as late.
    tcp_keepalive_idle_seconds: float = Field(default=30.0, ge=1, le=7_200)

    @field_validator("dsn")
    @classmethod
    def _usable_dsn(cls, value: SecretStr) -> SecretStr:
        # The driver would refuse it only at connect, or misread it and retry for ever.
        check_dsn(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _pool_bounds(self) -> PostgresSettings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        return self


class ChecksSettings(_Section):
    initial_delay_seconds: float = Field(default=600.0, ge=0, le=86_400)
    interval_seconds: float = Field(default=300.0, gt=0, le=86_400)
    session_ttl_seconds: float = Field(default=43_200.0, gt=0, le=30 * 86_400)
    dismiss_snooze_seconds: float = Field(default=3_600.0, ge=0, le=30 * 86_400)
    tick_seconds: float = Field(default=1.0, gt=0, le=60)
    batch_size: int = Field(default=2_000, ge=1, le=100_000)
    # Decide unchanged checks from memory (daemon/core/memo.py); off: every check locks and
    # reads its session in PostgreSQL, as before. For diagnosis and comparison.
    decide_in_memory: bool = True
    sweep_interval_seconds: float = Field(default=30.0, gt=0, le=3_600)
    alert_retention_seconds: float = Field(default=7 * 86_400.0, gt=0)
    relay_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # Session events stamped further than this in the future are dead-lettered.
    max_clock_skew_seconds: float = Field(default=300.0, ge=0, le=86_400)
    # Directory notices arriving within this window are re-evaluated in one pass, so
    # a bulk import is one pass per account rather than one per row.
    reevaluate_debounce_seconds: float = Field(default=0.05, ge=0, le=5)
    # How often the LISTEN connection is probed; a lost one is also noticed at once.
    listener_keepalive_seconds: float = Field(default=5.0, gt=0, le=300)
    # An alert lists at most this many recommended locations (with the total and a
    # truncated flag), so that an all_locations alert in an account of thousands of
    # locations still fits the broker (docs/spec.md#alerts-topic).
    max_recommended_locations: int = Field(default=50, ge=1, le=1_000)

    @model_validator(mode="after")
    def _snooze_outlives_nothing(self) -> ChecksSettings:
        # A snooze is read from the dismissed alert's row, which the sweep purges
        # after max(alert_retention, session_ttl): a longer snooze would end early.
        kept = max(self.alert_retention_seconds, self.session_ttl_seconds)
        if self.dismiss_snooze_seconds > kept:
            raise ValueError(
                "dismiss_snooze_seconds must not exceed max(alert_retention_seconds, "
                f"session_ttl_seconds) = {kept:g}: dismissed alerts are purged after that"
            )
        return self


class HttpSettings(_Section):
    host: str = "0.0.0.0"  # noqa: S104  a daemon in a container listens on every interface
    port: int = Field(default=9911, ge=0, le=65_535)


class LogSettings(_Section):
    format: LogFormat = "auto"
    level: LogLevel = "info"
    # IP addresses and user ids are personal data: when on, every log line carries a
    # keyed hash of them instead. Without a key, one is drawn per process, so hashes
    # correlate lines of one process only (see README "Personal data in logs").
    redact: bool = False
    redact_key: SecretStr | None = None
    redact_key_file: Path | None = None


class GeoIpSettings(_Section):
    # A MaxMind DB file (GeoLite2-City, DB-IP City Lite); None: no geolocation
    # (docs/spec.md#geolocation-check).
    database: Path | None = None
    # An address farther than this plus the database's accuracy radius is a mismatch.
    max_distance_km: float = Field(default=50.0, gt=0, le=20_000)


class LearningSettings(_Section):
    """What e911d learns from users (docs/spec.md#learning-from-users)."""

    # A user's remembered networks: at most this many, oldest dropped first.
    confirmed_networks_per_user: int = Field(default=20, ge=1, le=1_000)
    # An entry is forgotten this long after it was last confirmed (90 days).
    confirmed_network_ttl_seconds: float = Field(default=90 * 86_400.0, gt=0)
    # A session without a BSSID or switch port is keyed by its IP's prefix: wide enough
    # for a home's dynamic addresses, narrow enough not to span neighbours.
    ipv4_prefix: int = Field(default=24, ge=8, le=32)
    ipv6_prefix: int = Field(default=56, ge=16, le=128)
    # report networks --format directory suggests a group only where at least this
    # share of the users who confirmed a location on the network chose the same one.
    agreement: float = Field(default=0.8, gt=0.5, le=1.0)
    # Networks nobody configured: the busiest this many of each account and UTC day are
    # kept (by distinct users, then sessions) when the day is summarised. The long tail
    # beyond is single-user home networks that no administrator would turn into groups;
    # the bound keeps an account of a million home workers from writing a million rows
    # a day for alert_retention.
    unconfigured_networks_per_account_day: int = Field(default=10_000, ge=1, le=1_000_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    # A factory: the default group_instance_id is this host's, read at load time.
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = PostgresSettings()
    checks: ChecksSettings = ChecksSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    geoip: GeoIpSettings = GeoIpSettings()
    learning: LearningSettings = LearningSettings()
    migrate_on_start: bool = True
    # In-flight work, then the consumer's leave of its group, get this long; closing
    # the other clients adds at most ~3 s, so the default keeps the whole stop inside
    # the 10 s a platform waits before SIGKILL.
    shutdown_timeout_seconds: float = Field(default=6.0, gt=0)

    @field_validator("shutdown_timeout_seconds")
    @classmethod
    def _inside_the_stop_bound(cls, value: float) -> float:
        # docs/spec.md#running-e911d: SIGTERM to exit within 10 s. A longer drain breaks
        # that promise, and a platform's grace period sized on it would SIGKILL us.
        if value > MAX_SHUTDOWN_TIMEOUT_SECONDS:
            raise ValueError(
                f"must be at most {MAX_SHUTDOWN_TIMEOUT_SECONDS:g} s: closing the clients "
                f"takes up to {CLOSE_SECONDS:g} s more, and the whole stop must end within "
                f"{STOP_SECONDS:g} s (docs/spec.md#running-e911d)"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the TOML file, which arrives as init values.
        return (env_settings, init_settings)


_SECTIONS = {name for name in Settings.model_fields}

"""Typed settings.

Every section forbids unknown keys, so a typo in an environment variable or a TOML
file stops the daemon at start with the offending key named, instead of silently
running on a default.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "E911_"


class ConfigError(Exception):
    """Raised when settings cannot be loaded; the message names every bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSettings(_Section):
    session_events: str = Field(default="e911.session-events", min_length=1, max_length=249)
    directory_events: str = Field(default="e911.directory-events", min_length=1, max_length=249)
    alerts: str = Field(default="e911.alerts", min_length=1, max_length=249)
    dead_letter: str = Field(default="e911.dead-letter", min_length=1, max_length=249)


class KafkaSettings(_Section):
    bootstrap_servers: str = Field(default="localhost:9092", min_length=1)
    group_id: str = Field(default="e911d", min_length=1)
    client_id: str = Field(default="e911d", min_length=1)
    source: str = Field(default="urn:e911d", min_length=1)
    topics: TopicSettings = TopicSettings()
    create_topics: bool = True
    topic_partitions: int = Field(default=12, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=16)
    max_event_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)
    poll_max_records: int = Field(default=2_000, ge=1, le=100_000)
    poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    # Bound on the consumer's fetch buffer (one response per partition at most).
    fetch_max_bytes: int = Field(default=16 * 1_048_576, ge=1_048_576, le=1_073_741_824)
    # A batch not stored after this long pauses fetching until it is (database slow).
    pause_after_seconds: float = Field(default=5.0, gt=0, le=600)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    request_timeout_ms: int = Field(default=30_000, ge=1_000, le=600_000)
    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100, le=60_000)
    enable_idempotence: bool = False


class PostgresSettings(_Section):
    dsn: SecretStr = SecretStr("postgresql://postgres@localhost:5432/e911d")
    pool_min_size: int = Field(default=2, ge=1, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=200)
    command_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

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
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    kafka: KafkaSettings = KafkaSettings()
    postgres: PostgresSettings = PostgresSettings()
    checks: ChecksSettings = ChecksSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    migrate_on_start: bool = True
    # In-flight work gets this long; closing the clients adds at most ~3 s, so the
    # default keeps the whole stop inside the 10 s a platform waits before SIGKILL.
    shutdown_timeout_seconds: float = Field(default=6.0, gt=0, le=60)

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


def _unknown_env_keys(environ: Mapping[str, str]) -> list[str]:
    """Environment variables with our prefix that name no setting.

    pydantic-settings ignores them, which would let ``E911_CHEKS__...`` pass silently.
    """
    unknown: list[str] = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        path = upper[len(ENV_PREFIX) :].lower().split("__")
        model: type[BaseModel] = Settings
        for i, part in enumerate(path):
            field = model.model_fields.get(part)
            if field is None:
                unknown.append(name)
                break
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                if i == len(path) - 1:
                    break  # a whole section as JSON
                model = annotation
            elif i != len(path) - 1:
                unknown.append(name)
                break
    return sorted(unknown)


def _format_validation_error(error: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        env_name = ENV_PREFIX + "__".join(str(p) for p in item["loc"]).upper()
        if item["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc} (env {env_name}): {item['msg']}")
    return "\n".join(lines)


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from an optional TOML file, the environment and explicit overrides.

    Raises ConfigError with every offending key named.
    """
    env = dict(os.environ if environ is None else environ)
    unknown = _unknown_env_keys(env)
    if unknown:
        raise ConfigError("unknown configuration keys in environment: " + ", ".join(unknown))
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
    merged = _deep_merge(file_values, dict(overrides or {}))
    saved = dict(os.environ)
    try:
        if environ is not None:
            os.environ.clear()
            os.environ.update(env)
        return Settings(**merged)
    except ValidationError as exc:
        origin = f"file {config_file} and environment" if config_file else "environment"
        raise ConfigError(_format_validation_error(exc, origin)) from exc
    finally:
        if environ is not None:
            os.environ.clear()
            os.environ.update(saved)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_DSN_PASSWORD = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


def mask_dsn(dsn: str) -> str:
    """Hide the password of a libpq URI, keep everything an operator needs to see."""
    masked = _DSN_PASSWORD.sub(r"\1***\3", dsn)
    return re.sub(r"(password=)[^&\s]*", r"\1***", masked)


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets replaced by ``***``."""
    data = settings.model_dump(mode="json")
    data["postgres"]["dsn"] = mask_dsn(settings.postgres.dsn.get_secret_value())
    if settings.kafka.sasl_password is not None:
        data["kafka"]["sasl_password"] = "***"  # noqa: S105  a mask, not a password
    return data

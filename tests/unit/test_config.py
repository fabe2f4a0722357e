"""Settings (docs/spec.md#running-e911d): defaults, environment, TOML file, errors naming the key,
masking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from e911d.config import ConfigError, Settings, load_settings, masked_settings


def load(env: dict[str, str] | None = None, file: Path | None = None, **kw: object) -> Settings:
    return load_settings(config_file=file, environ=env or {}, **kw)  # type: ignore[arg-type]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "e911d.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = load()
    assert s.checks.initial_delay_seconds == 600
    assert s.checks.interval_seconds == 300
    assert s.checks.session_ttl_seconds == 12 * 3600
    assert s.checks.dismiss_snooze_seconds == 60 * 60
    assert s.http.port == 9911
    topics = s.kafka.topics
    assert topics.session_events == "e911.session-events"
    assert topics.directory_events == "e911.directory-events"
    assert topics.alerts == "e911.alerts"
    assert topics.dead_letter == "e911.dead-letter"
    assert s.migrate_on_start is True


def test_process_environment_is_not_read_when_environ_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("E911_HTTP__PORT", "1234")
    assert load({}).http.port == 9911
    assert os.environ["E911_HTTP__PORT"] == "1234"  # restored afterwards


def test_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("E911_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("E911_HTTP__PORT", "1234")
    assert load_settings().http.port == 1234


def test_env_nesting() -> None:
    s = load(
        {
            "E911_CHECKS__INITIAL_DELAY_SECONDS": "5",
            "E911_CHECKS__INTERVAL_SECONDS": "2.5",
            "E911_KAFKA__BOOTSTRAP_SERVERS": "broker:9092",
            "E911_KAFKA__TOPICS__ALERTS": "my.alerts",
            "E911_POSTGRES__DSN": "postgresql://u@db/e911d",
            "E911_HTTP__PORT": "8080",
            "E911_MIGRATE_ON_START": "false",
            "OTHER_VARIABLE": "ignored",
        }
    )
    assert s.checks.initial_delay_seconds == 5
    assert s.checks.interval_seconds == 2.5
    assert s.kafka.bootstrap_servers == "broker:9092"
    assert s.kafka.topics.alerts == "my.alerts"
    assert s.kafka.topics.session_events == "e911.session-events"
    assert s.postgres.dsn.get_secret_value() == "postgresql://u@db/e911d"
    assert s.http.port == 8080
    assert s.migrate_on_start is False


def test_env_names_are_case_insensitive() -> None:
    assert load({"e911_checks__interval_seconds": "7"}).checks.interval_seconds == 7


def test_toml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
migrate_on_start = false

[checks]
initial_delay_seconds = 30
interval_seconds = 15

[kafka.topics]
alerts = "file.alerts"

[http]
port = 9000
""",
    )
    s = load(file=path)
    assert s.checks.initial_delay_seconds == 30
    assert s.checks.interval_seconds == 15
    assert s.kafka.topics.alerts == "file.alerts"
    assert s.kafka.topics.dead_letter == "e911.dead-letter"
    assert s.http.port == 9000
    assert s.migrate_on_start is False


def test_env_overrides_the_file_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[checks]\ninitial_delay_seconds = 30\ninterval_seconds = 15\n")
    s = load({"E911_CHECKS__INTERVAL_SECONDS": "99"}, file=path)
    assert s.checks.interval_seconds == 99
    assert s.checks.initial_delay_seconds == 30  # the file's other key survives


def test_overrides_merge_into_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[checks]\ninitial_delay_seconds = 30\n")
    s = load(file=path, overrides={"checks": {"interval_seconds": 4}})
    assert s.checks.initial_delay_seconds == 30
    assert s.checks.interval_seconds == 4


@pytest.mark.parametrize("key", ["E911_CHEKS__X", "E911_CHECKS__NOPE", "E911_HTTP__PORT__X"])
def test_unknown_env_key(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load({key: "1", "E911_HTTP__PORT": "1"})


def test_every_unknown_env_key_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load({"E911_CHEKS__X": "1", "E911_NOPE": "2"})
    assert "E911_CHEKS__X" in str(info.value)
    assert "E911_NOPE" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "dotted"),
    [
        ("E911_HTTP__PORT", "70000", "http.port"),
        ("E911_HTTP__PORT", "abc", "http.port"),
        ("E911_CHECKS__INTERVAL_SECONDS", "0", "checks.interval_seconds"),
        ("E911_CHECKS__INTERVAL_SECONDS", "abc", "checks.interval_seconds"),
        ("E911_CHECKS__INITIAL_DELAY_SECONDS", "-1", "checks.initial_delay_seconds"),
        ("E911_LOG__LEVEL", "loud", "log.level"),
    ],
)
def test_invalid_env_value_names_the_key(key: str, value: str, dotted: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({key: value})
    message = str(info.value)
    assert key in message
    assert dotted in message


def test_invalid_file_value_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[checks]\ninterval_seconds = 0\n")
    with pytest.raises(ConfigError, match=r"checks\.interval_seconds"):
        load(file=path)


@pytest.mark.parametrize(
    ("text", "dotted"),
    [
        ("[checks]\nnope = 1\n", "checks.nope"),
        ("nope = 1\n", "nope"),
        ("[chekcs]\ninterval_seconds = 1\n", "chekcs"),
        ("[kafka.topics]\nalert = 'x'\n", "kafka.topics.alert"),
    ],
)
def test_unknown_key_in_toml(tmp_path: Path, text: str, dotted: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(file=write(tmp_path, text))
    assert dotted in str(info.value)
    assert "unknown key" in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read"):
        load(file=missing)


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(file=tmp_path)  # a directory is not a file


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"[checks]\ninterval_seconds = 1 # \xff\n")
    with pytest.raises(ConfigError):
        load(file=path)


@pytest.mark.parametrize("text", ["[checks\n", "interval_seconds = = 1\n", "a = 'x'\na = 'y'\n"])
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load(file=path)
    assert str(path) in str(info.value)


def test_pool_bounds_are_cross_checked() -> None:
    with pytest.raises(ConfigError, match="pool_min_size"):
        load({"E911_POSTGRES__POOL_MIN_SIZE": "20", "E911_POSTGRES__POOL_MAX_SIZE": "5"})


def test_masked_settings_hides_the_dsn_password() -> None:
    s = load({"E911_POSTGRES__DSN": "postgresql://u:secret@h/db"})
    masked = masked_settings(s)
    text = json.dumps(masked)
    assert "secret" not in text
    assert masked["postgres"]["dsn"] == "postgresql://u:***@h/db"
    assert masked["checks"]["interval_seconds"] == 300  # the rest is shown as is


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://user:s3cr%40t@db.example:5432/e911d?sslmode=require",
        "postgres://:s3cr3t@h/db",
        "host=h user=u password=s3cr3t dbname=db",
        "postgresql://u@h/db?password=s3cr3t&sslmode=require",
    ],
)
def test_masked_settings_hides_password_in_other_dsn_forms(dsn: str) -> None:
    masked = masked_settings(load({"E911_POSTGRES__DSN": dsn}))
    assert "s3cr" not in json.dumps(masked)
    assert "***" in masked["postgres"]["dsn"]


def test_masked_settings_keeps_a_dsn_without_password() -> None:
    masked = masked_settings(load({"E911_POSTGRES__DSN": "postgresql://u@h:5432/db"}))
    assert masked["postgres"]["dsn"] == "postgresql://u@h:5432/db"


def test_masked_settings_hides_the_sasl_password() -> None:
    s = load(
        {
            "E911_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "E911_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "E911_KAFKA__SASL_USERNAME": "svc",
            "E911_KAFKA__SASL_PASSWORD": "hunter2",
        }
    )
    assert s.kafka.sasl_password is not None
    assert s.kafka.sasl_password.get_secret_value() == "hunter2"
    masked = masked_settings(s)
    assert "hunter2" not in json.dumps(masked)
    assert masked["kafka"]["sasl_password"] == "***"  # noqa: S105  the mask
    assert masked["kafka"]["sasl_username"] == "svc"
    assert "hunter2" not in repr(s)


def test_masked_settings_without_sasl_password() -> None:
    assert masked_settings(load())["kafka"]["sasl_password"] is None


def test_a_snooze_longer_than_dismissed_alerts_are_kept_is_refused() -> None:
    env = {
        "E911_CHECKS__DISMISS_SNOOZE_SECONDS": "90000",
        "E911_CHECKS__ALERT_RETENTION_SECONDS": "86400",
        "E911_CHECKS__SESSION_TTL_SECONDS": "43200",
    }
    with pytest.raises(ConfigError, match="dismiss_snooze_seconds"):
        load(env)
    assert load({**env, "E911_CHECKS__ALERT_RETENTION_SECONDS": "90000"}).checks


def test_rebalance_timeout_is_read_and_passed_on() -> None:
    assert load().kafka.rebalance_timeout_ms == 5_000
    assert load({"E911_KAFKA__REBALANCE_TIMEOUT_MS": "20000"}).kafka.rebalance_timeout_ms == 20_000
    with pytest.raises(ConfigError, match=r"kafka\.rebalance_timeout_ms"):
        load({"E911_KAFKA__REBALANCE_TIMEOUT_MS": "999"})


def test_a_rebalance_timeout_the_client_would_not_wait_for_is_refused() -> None:
    # aiokafka gives up on a JoinGroup after request_timeout_ms, which the broker may
    # hold for the whole rebalance timeout.
    env = {"E911_KAFKA__REQUEST_TIMEOUT_MS": "5000"}
    with pytest.raises(ConfigError, match="E911_KAFKA__REBALANCE_TIMEOUT_MS"):
        load(env)
    assert load({**env, "E911_KAFKA__REBALANCE_TIMEOUT_MS": "4000"}).kafka

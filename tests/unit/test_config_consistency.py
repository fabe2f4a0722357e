"""Settings that `e911d run` would refuse, or be quietly wrong with, are refused when
they are loaded (so `e911d config` says so too), each error naming the setting and
where it was set (docs/spec.md#running-e911d)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncpg import connect_utils

from e911d.config import ConfigError, load_settings
from e911d.config.dsn import DsnError, as_uri, check_dsn
from e911d.config.settings import (
    CLOSE_SECONDS,
    MAX_SHUTDOWN_TIMEOUT_SECONDS,
    STOP_SECONDS,
)

ROOT = Path(__file__).resolve().parents[2]


def error_of(env: dict[str, str], file: Path | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=file, environ=env)
    return str(caught.value)


# ---- the PostgreSQL DSN ------------------------------------------------------------------

REFUSED_DSNS = [
    ("mysql://x", "postgresql:// or postgres://, not mysql://"),
    ("http://db/e911d", "not http://"),
    ("just-a-host", "not a URI (postgresql://…) and not libpq key=value pairs"),
    ("host=db 'unterminated", "not a URI"),
    ("postgresql://u@db/x?sslmode=required", "sslmode='required' is not one of disable, allow"),
    ("host=db sslmode=verify_full", "sslmode='verify_full'"),
    ("postgresql://u@db:54x2/x", "port '54x2' is not a port number"),
    ("postgresql://u@db:99999/x", "port '99999'"),
    ("host=db port=5432,abc", "port 'abc'"),
    ("postgresql://u@db/x?sslmode", "not key=value"),
    ("postgresql://u@[::1/x", "not a valid URI"),
    ("postgresql://u:p@ss@db/x", "unencoded '@'"),
    ("postgresql://u@db/x?target_session_attrs=master", "target_session_attrs='master'"),
    ("postgresql://u@db/x?ssl_min_protocol_version=SSLv3", "ssl_min_protocol_version"),
    ("postgresql://u@db/x?sslrootcert=system&sslmode=verify-ca", "needs sslmode=verify-full"),
    ("host=db sslrootcert=system sslmode=require", "needs sslmode=verify-full"),
]


@pytest.mark.parametrize(("dsn", "why"), REFUSED_DSNS)
def test_a_dsn_the_driver_cannot_use_is_refused_naming_the_setting(dsn: str, why: str) -> None:
    message = error_of({"E911_POSTGRES__DSN": dsn})
    assert "env E911_POSTGRES__DSN (postgres.dsn)" in message
    assert why in message
    assert "a secret, not shown" in message


def test_a_refused_dsn_never_shows_its_password(tmp_path: Path) -> None:
    for dsn in ("mysql://svc:s3cret@db/x", "postgresql://svc:s3@cret@db/x", "host=db s3cret"):
        assert "s3" not in error_of({"E911_POSTGRES__DSN": dsn})
    path = tmp_path / "e911d.toml"
    path.write_text("[postgres]\ndsn = 'postgresql://u:s3cret@db/x?sslmode=nope'\n")
    message = error_of({}, path)
    assert f"file {path}: key postgres.dsn" in message and "s3cret" not in message


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:p%40ss@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem",
        "postgres://db/x",
        "postgresql://u@h1:5432,h2:5433/x?target_session_attrs=read-write",
        "postgresql://u@[2001:db8::1]:5432/x?sslmode=require",
        "postgresql://u@db/x?sslrootcert=system",
        "postgresql://u@db/x?sslrootcert=system&sslmode=verify-full",
        "host=db dbname=x user=u password='a b\\' c' sslmode=prefer",
        "host=/run/postgresql port=5432 dbname=x",
        "",
    ],
)
def test_dsns_the_driver_can_use_are_accepted(dsn: str) -> None:
    assert load_settings(environ={"E911_POSTGRES__DSN": dsn}).postgres.dsn.get_secret_value() == dsn


def _driver_accepts(dsn: str) -> bool:
    """asyncpg's own reading of a DSN, as the daemon hands it over (no connection)."""
    try:
        connect_utils._parse_connect_dsn_and_args(
            dsn=as_uri(dsn), host=None, port=None, user=None, password=None, passfile=None,
            database=None, ssl=None, service=None, servicefile=None, direct_tls=None,
            server_settings=None, target_session_attrs=None, krbsrvname=None, gsslib=None,
        )  # fmt: skip
    except (ValueError, connect_utils.exceptions.ClientConfigurationError):
        return False
    return True


@pytest.mark.parametrize(
    "dsn",
    [
        "mysql://x",
        "postgresql://u@db/x?sslmode=bogus",
        "postgresql://u@db:port/x",
        "postgresql://u@db/x?a",
        "postgresql://u@db/x?a=1&&b=2",
        "postgresql://[::1/x",
        "postgresql://u@db/x?target_session_attrs=bogus",
        "postgresql://u@db/x?ssl_max_protocol_version=TLSv9",
        "postgresql://u@db/x?sslmode=require&target_session_attrs=read-only",
        "host=db port=5432 dbname=x sslmode=disable",
        "postgresql://u@db/x",
    ],
)
def test_the_check_agrees_with_the_driver(dsn: str) -> None:
    """Refused at load exactly when asyncpg would refuse it at connect (the cases where
    the check is stricter, an '@' it would misread or a port above 65535, are above)."""
    try:
        check_dsn(dsn)
        ours = True
    except DsnError:
        ours = False
    assert ours == _driver_accepts(dsn)


def test_a_keyword_dsn_reaches_the_driver_with_every_parameter() -> None:
    """asyncpg reads URIs only: a libpq key=value DSN is handed over as one."""
    uri = as_uri("host='/tmp/a b' port=5433 dbname=x user=u password='p w' sslmode=disable")
    addrs, params = connect_utils._parse_connect_dsn_and_args(
        dsn=uri, host=None, port=None, user=None, password=None, passfile=None,
        database=None, ssl=None, service=None, servicefile=None, direct_tls=None,
        server_settings=None, target_session_attrs=None, krbsrvname=None, gsslib=None,
    )  # fmt: skip
    assert addrs == ["/tmp/a b/.s.PGSQL.5433"]
    assert (params.user, params.password, params.database) == ("u", "p w", "x")
    assert params.ssl is False


# ---- Kafka -------------------------------------------------------------------------------


def test_the_heartbeat_is_at_most_a_third_of_the_session_timeout() -> None:
    env = {"E911_KAFKA__SESSION_TIMEOUT_MS": "9000", "E911_KAFKA__HEARTBEAT_INTERVAL_MS": "3001"}
    message = error_of(env)
    assert "E911_KAFKA__HEARTBEAT_INTERVAL_MS (3001) must be at most a third" in message
    assert "env E911_KAFKA__SESSION_TIMEOUT_MS" in message  # where each was set
    ok = load_settings(environ={**env, "E911_KAFKA__HEARTBEAT_INTERVAL_MS": "3000"})
    assert ok.kafka.heartbeat_interval_ms * 3 == ok.kafka.session_timeout_ms
    assert "at most a third" in (ROOT / "README.md").read_text("utf-8")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("SESSION_EVENTS", "DIRECTORY_EVENTS"),
        ("SESSION_EVENTS", "ALERTS"),
        ("ALERTS", "DEAD_LETTER"),
        ("DIRECTORY_EVENTS", "DEAD_LETTER"),
    ],
)
def test_two_roles_on_one_topic_are_refused(first: str, second: str) -> None:
    env = {f"E911_KAFKA__TOPICS__{first}": "t.same", f"E911_KAFKA__TOPICS__{second}": "t.same"}
    message = error_of(env)
    assert f"E911_KAFKA__TOPICS__{first} and E911_KAFKA__TOPICS__{second} are both 't.same'" in (
        message
    )


def test_a_topic_set_to_another_roles_default_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e911d.toml"
    path.write_text("[kafka.topics]\nalerts = 'e911.dead-letter'\n")
    message = error_of({}, path)
    assert "E911_KAFKA__TOPICS__ALERTS and E911_KAFKA__TOPICS__DEAD_LETTER" in message
    assert f"file {path}: key kafka.topics.alerts" in message


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"SASL_USERNAME": "svc"}, "E911_KAFKA__SASL_USERNAME set"),
        ({"SASL_PASSWORD": "pw"}, "E911_KAFKA__SASL_PASSWORD set"),
        (
            {"SASL_USERNAME": "svc", "SASL_PASSWORD": "pw"},
            "E911_KAFKA__SASL_USERNAME and E911_KAFKA__SASL_PASSWORD set",
        ),
    ],
)
def test_sasl_credentials_without_a_sasl_protocol_are_refused(
    protocol: str, given: dict[str, str], named: str
) -> None:
    env = {f"E911_KAFKA__{k}": v for k, v in given.items()}
    message = error_of({**env, "E911_KAFKA__SECURITY_PROTOCOL": protocol})
    assert named in message
    assert f"security_protocol={protocol} sends no credentials" in message
    assert "pw" not in message.replace("PASSWORD", "")


def test_sasl_credentials_with_a_sasl_protocol_are_accepted() -> None:
    env = {
        "E911_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "E911_KAFKA__SASL_MECHANISM": "PLAIN",
        "E911_KAFKA__SASL_USERNAME": "svc",
        "E911_KAFKA__SASL_PASSWORD": "pw",
    }
    assert load_settings(environ=env).kafka.sasl_username == "svc"


# ---- the stop ----------------------------------------------------------------------------


def test_a_shutdown_timeout_past_the_stop_bound_is_refused() -> None:
    assert MAX_SHUTDOWN_TIMEOUT_SECONDS + CLOSE_SECONDS <= STOP_SECONDS == 10
    allowed = load_settings(environ={"E911_SHUTDOWN_TIMEOUT_SECONDS": "7"})
    assert allowed.shutdown_timeout_seconds == MAX_SHUTDOWN_TIMEOUT_SECONDS
    message = error_of({"E911_SHUTDOWN_TIMEOUT_SECONDS": "7.5"})
    assert "env E911_SHUTDOWN_TIMEOUT_SECONDS (shutdown_timeout_seconds)" in message
    assert "must be at most 7 s" in message and "(got '7.5')" in message


def _deployment() -> dict[str, Any]:
    text = (ROOT / "deploy/kubernetes/base/deployment.yaml").read_text("utf-8")
    found: dict[str, Any] = yaml.safe_load(text)
    return found


def test_the_manifests_grace_period_outlasts_the_longest_stop_the_config_allows() -> None:
    """Kubernetes sends SIGKILL after terminationGracePeriodSeconds: it must be longer
    than the drain the settings allow plus the clients' closing, or a slow stop is
    killed halfway and its alerts wait for the next instance."""
    spec = _deployment()["spec"]["template"]["spec"]
    grace = spec["terminationGracePeriodSeconds"]
    assert grace > MAX_SHUTDOWN_TIMEOUT_SECONDS + CLOSE_SECONDS
    configured = (ROOT / "deploy/kubernetes/base/configmap.yaml").read_text("utf-8")
    data = yaml.safe_load(configured)["data"]
    shutdown = float(data["E911_SHUTDOWN_TIMEOUT_SECONDS"])
    environ = {**data, "E911_KAFKA__SASL_PASSWORD": "from e911d-secrets"}
    assert load_settings(environ=environ).shutdown_timeout_seconds == shutdown < grace

"""The bounds every PostgreSQL connection of the daemon gets (daemon/store/limits.py),
and the settings they come from, refused at load when out of range."""

from __future__ import annotations

import socket

import pytest

from e911d.config import ConfigError, load_settings
from e911d.daemon.store.limits import ConnectionLimits, set_keepalive


def test_server_settings_carry_the_statement_timeout_and_keepalives() -> None:
    limits = ConnectionLimits(statement_timeout=5.0, tcp_keepalive_idle=30.0)
    assert limits.server_settings({}) == {
        "statement_timeout": "5000ms",
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }


def test_the_dsn_wins_and_no_statement_timeout_means_the_servers_own() -> None:
    limits = ConnectionLimits(statement_timeout=None)
    got = limits.server_settings({"tcp_keepalives_idle": "7"})
    assert "statement_timeout" not in got and "tcp_keepalives_idle" not in got


def test_the_client_socket_gets_keepalives_and_a_user_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        set_keepalive(sock, ConnectionLimits(tcp_keepalive_idle=9.0))
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 9
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 18_000


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("statement_timeout_seconds", -1),
        ("acquire_timeout_seconds", 0),
        ("connect_timeout_seconds", 0),
        ("connect_timeout_seconds", 301),
        ("tcp_keepalive_idle_seconds", 0.5),
        ("command_timeout_seconds", 0),
    ],
)
def test_out_of_range_timeouts_are_refused_at_load(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(environ={f"E911_POSTGRES__{key.upper()}": str(value)})


def test_a_multi_host_dsn_with_read_write_loads() -> None:
    dsn = "postgresql://e911d@db-a:5432,db-b:5433/e911d?target_session_attrs=read-write"
    settings = load_settings(environ={"E911_POSTGRES__DSN": dsn})
    assert settings.postgres.dsn.get_secret_value() == dsn

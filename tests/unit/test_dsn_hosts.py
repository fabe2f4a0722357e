"""The hosts of a multi-host DSN, in order, as libpq reads them: each is connected to
in turn with a timeout of its own (daemon/store/hosts.py)."""

from __future__ import annotations

import pytest

from e911d.config.dsn import as_uri
from e911d.daemon.store.hosts import dsn_hosts


@pytest.mark.parametrize(
    ("dsn", "hosts"),
    [
        ("postgresql://u:p@a:1,b:2/db?target_session_attrs=read-write", [("a", 1), ("b", 2)]),
        ("postgresql://u@[::1]:5,h/db", [("::1", 5), ("h", None)]),
        ("postgresql://u@a,b:7/db", [("a", None), ("b", 7)]),
        ("postgresql://u@/db?host=/run/pg", [("/run/pg", None)]),
        ("postgresql://?host=a,b&port=9", [("a", 9), ("b", 9)]),
        ("postgresql://u@h/db", [("h", None)]),
        (as_uri("host=a,b port=5432,5433 dbname=x"), [("a", 5432), ("b", 5433)]),
    ],
)
def test_hosts_in_order_with_their_ports(dsn: str, hosts: list[tuple[str, int | None]]) -> None:
    assert dsn_hosts(dsn) == hosts

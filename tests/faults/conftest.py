"""Fixtures of the fault trials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fault_proxy import FaultProxy
from tests.faults.blackhole import pg_proxy_for


@pytest.fixture
def pg_proxy(database: str) -> Iterator[FaultProxy]:
    """The test's database behind a FaultProxy, over TCP (tests/faults/blackhole.py)."""
    yield from pg_proxy_for(database)

"""The listener's horizon: its own keepalive markers heard back advance it, anything
else on the channel leaves it alone, and what a reconnection read becomes notices."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from e911d.daemon.store.missed_changes import Horizon, Mark, Missed, parse_mark
from e911d.daemon.store.notify import (
    DirectoryListener,
    ListenerConfig,
    ListenerHooks,
    Notice,
    _as_notices,
)


def test_a_marker_parses() -> None:
    assert parse_mark('{"k": "mark", "t": "abc.1", "x": "742"}') == Mark("abc.1", 742)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "mark",
        '{"k": "mark"',
        '["mark"]',
        '{"k": "mark", "t": "a"}',
        '{"k": "mark", "t": 1, "x": "5"}',
        '{"k": "mark", "t": "a", "x": 5}',
        '{"k": "mark", "t": "a", "x": "-5"}',
        '{"k": "mark", "t": "a", "x": "5e3"}',
        '{"k": "account", "a": "mark"}',
        '{"k": "mark", "t": "a", "x": "12x"}',
    ],
)
def test_anything_else_is_not_a_marker(payload: str) -> None:
    assert parse_mark(payload) is None


class _Heard:
    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def hooks(self) -> ListenerHooks:
        async def connected(_missed: Sequence[Notice] | None) -> None:
            return None

        return ListenerHooks(self.notices.append, connected, lambda _up: None)


STARTED = "00000001"  # the WAL timeline


def _listener(heard: _Heard) -> DirectoryListener:
    listener = DirectoryListener(ListenerConfig("postgresql://localhost/e911"), heard.hooks())
    listener._marker = "me.3"
    listener.horizon = Horizon(100, STARTED)
    return listener


def _mark(token: str, horizon: int) -> str:
    return json.dumps({"k": "mark", "t": token, "x": str(horizon)})


def test_only_the_listeners_own_marker_advances_its_horizon() -> None:
    heard = _Heard()
    listener = _listener(heard)
    listener._on_notify(None, 1, "e911_directory", _mark("someone-else.0", 500))
    listener._on_notify(None, 1, "e911_directory", _mark("me.2", 500))  # an older connection's
    assert (listener.horizon, listener.marks_heard) == (Horizon(100, STARTED), 0)
    listener._on_notify(None, 1, "e911_directory", _mark("me.3", 300))
    assert (listener.horizon, listener.marks_heard) == (Horizon(300, STARTED), 1)
    listener._on_notify(None, 1, "e911_directory", _mark("me.3", 200))  # never backwards
    assert (listener.horizon, listener.marks_heard) == (Horizon(300, STARTED), 2)
    assert heard.notices == []  # markers are not directory changes


def test_notices_still_pass_through() -> None:
    heard = _Heard()
    listener = _listener(heard)
    listener._on_notify(None, 1, "e911_directory", '{"k": "user", "a": "acme", "u": "u1"}')
    listener._on_notify(None, 1, "e911_directory", "garbage")
    assert heard.notices == [Notice("user", "acme", "u1")]
    assert listener.horizon == Horizon(100, STARTED)


def test_what_a_reconnection_read_becomes() -> None:
    changed = (("account", "acme"), ("directory", "acme"), ("directory", "globex"))
    assert _as_notices(Missed(changed, False, Horizon(9, STARTED))) == [
        Notice("account", "acme"),
        Notice("directory", "acme"),
        Notice("directory", "globex"),
    ]
    # Another server (a failover), or ids behind the horizon (a restore): everything.
    assert _as_notices(Missed((), True, Horizon(9, STARTED))) == [Notice("all", None)]

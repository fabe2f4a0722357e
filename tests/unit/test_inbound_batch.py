"""A batch whose events someone else already stored drops them (the zombie fence,
docs/architecture.md#a-zombie-owner), keeping the rest and the offsets to store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from e911d.consumers.batch import make_batch
from e911d.daemon.core.events import (
    AccountDeleted,
    DirectoryEvent,
    DirectoryEventKind,
    SessionEvent,
    SessionEventKind,
)

WHEN = dt.datetime(2026, 12, 6, 9, tzinfo=dt.UTC)


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int


def logout(sid: str) -> SessionEvent:
    return SessionEvent(SessionEventKind.LOGOUT, sid, WHEN, "acme", "u1", sid)


def deleted(account: str) -> DirectoryEvent:
    return DirectoryEvent(
        DirectoryEventKind.ACCOUNT_DELETED, account, WHEN, AccountDeleted(account)
    )


def test_events_below_the_stored_offsets_are_dropped_and_the_rest_kept_in_order():
    batch = make_batch(
        [
            (Msg("s", 0, 10), logout("a")),
            (Msg("s", 0, 11), logout("b")),
            (Msg("s", 1, 5), logout("c")),
            (Msg("d", 2, 7), deleted("x")),
            (Msg("d", 2, 8), deleted("y")),
        ],
        {("s", 0): 12, ("s", 1): 6, ("d", 2): 9},
    )
    assert batch.partitions() == {("s", 0), ("s", 1), ("d", 2)}
    # Another consumer stored s/0 up to 11 and d/2 up to 9; s/1 is ours alone.
    fresh, dropped = batch.after({("s", 0): 11, ("d", 2): 9, ("s", 1): 5})
    assert [e.session_id for _, e in fresh.session_events] == ["b", "c"]
    assert fresh.session_at == [("s", 0, 11), ("s", 1, 5)]
    assert fresh.directory_events == []
    assert dropped == {("s", 0): 1, ("d", 2): 2}
    assert fresh.next_offsets == batch.next_offsets  # stored as before (GREATEST)


def test_a_batch_nobody_stored_ahead_of_is_kept_whole():
    batch = make_batch([(Msg("s", 0, 3), logout("a"))], {("s", 0): 4})
    assert batch.after({}) == (batch, {})
    assert batch.after({("s", 0): 3}) == (batch, {})

"""The relay's waves: one event per key in flight, each key's events in outbox order
(docs/architecture.md#order-on-the-alerts-topic)."""

from __future__ import annotations

from e911d.daemon.store.outbox import OutboxRow, waves


def row(id_: int, key: str) -> OutboxRow:
    return OutboxRow(id_, "alerts", key.encode(), b"")


def test_each_wave_has_one_row_per_key_and_keys_keep_their_order():
    rows = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "a"), row(5, "c"), row(6, "b")]
    got = [[(r.id, r.key.decode()) for r in wave] for wave in waves(rows)]
    assert got == [[(1, "a"), (2, "b"), (5, "c")], [(3, "a"), (6, "b")], [(4, "a")]]


def test_distinct_keys_go_in_one_wave_and_nothing_gives_no_wave():
    assert len(waves([row(i, f"k{i}") for i in range(1000)])) == 1
    assert waves([]) == []

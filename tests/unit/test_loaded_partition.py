"""A loaded partition: arrays, not an object a session, and the schedule that takes
sessions out of it behaves as if each had been added one by one."""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.schedulers.loaded import LoadedPartition
from e911d.schedulers.schedule import CheckSchedule, Due

T = 1_700_000_000.0
D = 600.0
I = 300.0  # noqa: E741

ODD_IDS = ["s1", "s10", "s2", "", "é", "🚑", "🚑🚑", "a" * 256, "a" * 255, "Z", "ü-x"]


def _packed(ids: list[str], logins: list[float]) -> tuple[str, bytes, bytes, bytes]:
    """What the database sends: ids in code-point order, big-endian numbers."""
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    ids_sorted = [ids[i] for i in order]
    times = [logins[i] for i in order]
    due = sorted(range(len(ids)), key=lambda pos: (times[pos], pos))
    return (
        "".join(ids_sorted),
        b"".join(struct.pack(">i", len(s)) for s in ids_sorted),
        b"".join(struct.pack(">d", t) for t in times),
        b"".join(struct.pack(">i", p) for p in due),
    )


def test_packed_columns_decode_to_the_sessions_they_hold() -> None:
    logins = [T + i for i in range(len(ODD_IDS))]
    part = LoadedPartition.of_packed(3, *_packed(ODD_IDS, logins), loaded_at=T)
    assert len(part) == part.live == len(ODD_IDS)
    for sid, t in zip(ODD_IDS, logins, strict=True):
        pos = part.find(sid)
        assert pos >= 0, sid
        assert part.id_at(pos) == sid
        assert part.logged_in_at[pos] == t
    assert part.find("s") == part.find("s3") == part.find("a" * 257) == -1
    assert list(part.pending()) == ODD_IDS  # login order
    assert part.partition == 3


def test_a_loaded_partition_holds_no_object_per_session() -> None:
    ids = [f"session-{i:06d}" for i in range(10_000)]
    part = LoadedPartition.of_sequences(0, ids, [T] * len(ids), loaded_at=T)
    held = [getattr(part, name) for name in LoadedPartition.__slots__]
    assert all(isinstance(v, str | array | bytearray | int | float) for v in held)
    assert isinstance(part.ids, str) and len(part.ids) == sum(map(len, ids))


def test_columns_that_do_not_line_up_are_refused_with_the_reason() -> None:
    ids, lengths, logins, due = _packed(["é", "b"], [T, T])
    with pytest.raises(ValueError, match="UTF8"):
        # Lengths counted in bytes (a database not in UTF8) end past the characters.
        LoadedPartition.of_packed(0, ids, struct.pack(">ii", 2, 1), logins, due, T)
    with pytest.raises(ValueError, match="do not line up"):
        LoadedPartition.of_packed(0, ids, lengths, logins[:8], due, T)
    with pytest.raises(ValueError, match="differ in length"):
        LoadedPartition.of_sequences(0, ["a"], [], T)


def test_taking_a_session_hides_it() -> None:
    part = LoadedPartition.of_sequences(0, ["a", "b", "c"], [T + 2, T + 1, T], loaded_at=T)
    assert part.id_at(part.head()) == "c"
    part.take(part.find("c"))
    part.take(part.find("b"))
    assert part.find("c") == -1 and part.live == 1
    assert part.id_at(part.head()) == "a"
    assert list(part.pending()) == ["a"]


def test_duplicate_ids_keep_the_first() -> None:
    part = LoadedPartition.of_sequences(0, ["a", "a"], [T, T + 9], loaded_at=T)
    assert len(part) == 1 and part.logged_in_at[0] == T


def test_loaded_sessions_are_due_like_added_ones_and_join_the_heap_when_checked() -> None:
    now = T + D + 50
    s = CheckSchedule(D, I)
    assert s.add_loaded(LoadedPartition.of_sequences(2, ["x", "y"], [T, T + 100], now)) == 2
    assert len(s) == 2 and "x" in s and "y" in s
    assert s.next_due() == now  # x is overdue: checked at once
    assert s.pop_due(now, 10) == [Due("x", 2, now)]
    assert s.next_due() == T + 100 + D  # y keeps its first due
    assert s.pop_due(T + 100 + D, 10) == [Due("y", 2, T + 100 + D)]
    assert s.next_due() == T + D + I  # x, on its cadence again
    assert len(s) == 2


def test_a_loaded_session_can_be_removed_re_added_and_given_a_memo() -> None:
    s = CheckSchedule(D, I)
    s.add_loaded(LoadedPartition.of_sequences(1, ["a", "b", "c"], [T, T, T], T))
    s.remove("a", 1)
    s.remove("b")  # partition unknown: every loaded partition is searched
    s.remove("zzz")
    assert "a" not in s and "b" not in s and len(s) == 1
    s.add("a", T + 5, 1, now=T + 5)  # logged in again: a fresh schedule
    s.add("c", T + 9, 1, now=T + 9)  # already tracked: keeps its own
    marker = object()
    s.set_memo("c", marker)
    assert s.memo("c") is marker
    s.set_memo("b", marker)  # untracked stays untracked
    assert "b" not in s
    assert s.pop_due(T + D + 5, 10) == [Due("c", 1, T + D, marker), Due("a", 1, T + 5 + D)]


def test_dropping_a_partition_drops_its_loaded_sessions() -> None:
    s = CheckSchedule(D, I)
    s.add_loaded(LoadedPartition.of_sequences(1, ["a", "b"], [T, T], T))
    s.add_loaded(LoadedPartition.of_sequences(2, ["c"], [T], T))
    assert sorted(s.sessions_of({1, 2})) == ["a", "b", "c"]
    assert s.drop_partitions({1}) == 2
    assert len(s) == 1 and "a" not in s
    assert [d.session_id for d in s.pop_due(T + D, 10)] == ["c"]


def test_loading_a_partition_again_keeps_what_is_tracked() -> None:
    s = CheckSchedule(D, I)
    s.add("a", T, 0, now=T)
    assert s.add_loaded(LoadedPartition.of_sequences(0, ["a", "b"], [T + 50, T], T)) == 1
    assert s.add_loaded(LoadedPartition.of_sequences(0, ["b", "c"], [T, T + 1], T)) == 1
    assert len(s) == 3
    due = s.pop_due(T + D + 1, 10)
    assert sorted((d.session_id, d.due_at) for d in due) == [
        ("a", T + D),
        ("b", T + D),
        ("c", T + D + 1),
    ]


def test_a_long_run_of_a_loaded_partition_respects_the_limit() -> None:
    ids = [f"s{i:05d}" for i in range(5000)]
    s = CheckSchedule(D, I)
    now = T + 10 * D
    s.add_loaded(LoadedPartition.of_sequences(0, ids, [T] * 5000, now))
    first = s.pop_due(now, 1200)
    assert len(first) == 1200 and len(s) == 5000
    rest = s.pop_due(now, 10_000)
    assert len(rest) == 3800
    assert {d.session_id for d in first} | {d.session_id for d in rest} == set(ids)
    assert s.pop_due(now, 10) == []


# ---- the same behaviour as one add a session ------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("pop"), st.integers(1, 400)),
        st.tuples(st.just("remove"), st.integers(0, 29)),
        st.tuples(st.just("add"), st.integers(0, 29)),
        st.tuples(st.just("memo"), st.integers(0, 29)),
        st.tuples(st.just("drop"), st.integers(0, 2)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    logins=st.lists(st.integers(0, 3000), min_size=1, max_size=30),
    load_at=st.integers(0, 4000),
    ops=_ops,
)
def test_property_loaded_partitions_schedule_like_one_add_each(
    logins: list[int], load_at: int, ops: list[tuple[str, int]]
) -> None:
    """Whatever happens to them, loaded sessions pop (as a set, each pop) exactly as
    the same sessions added one by one do; order within a pop is due order per
    partition."""
    ids = [f"s{i}" for i in range(len(logins))]
    one, loaded = CheckSchedule(60.0, 90.0), CheckSchedule(60.0, 90.0)
    for p in range(3):
        mine = [(ids[i], float(t)) for i, t in enumerate(logins) if i % 3 == p]
        for sid, t in mine:
            one.add(sid, t, p, float(load_at))
        loaded.add_many([m[0] for m in mine], [m[1] for m in mine], p, float(load_at))
    now = float(load_at)
    for op, arg in ops:
        if op == "pop":
            now += arg
            a, b = one.pop_due(now, 10_000), loaded.pop_due(now, 10_000)
            assert sorted(a) == sorted(b)
            for p in range(3):
                dues = [d.due_at for d in b if d.partition == p]
                assert dues == sorted(dues)
        elif op == "remove" and arg < len(ids):
            one.remove(ids[arg])
            loaded.remove(ids[arg], arg % 3 if arg % 2 else None)
        elif op == "add" and arg < len(ids):
            one.add(ids[arg], now, arg % 3, now)
            loaded.add(ids[arg], now, arg % 3, now)
        elif op == "memo" and arg < len(ids):
            one.set_memo(ids[arg], op)
            loaded.set_memo(ids[arg], op)
        elif op == "drop":
            assert one.drop_partitions({arg}) == loaded.drop_partitions({arg})
        assert len(one) == len(loaded)
        assert one.next_due() == loaded.next_due()
        assert sorted(one.sessions_of({0, 1, 2})) == sorted(loaded.sessions_of({0, 1, 2}))

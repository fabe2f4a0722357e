"""Per-session check timing (docs/spec.md#check-schedule): anchored to logged_in_at, no bursts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.schedulers.schedule import (
    CheckSchedule,
    Due,
    first_due_at_or_after,
    next_due_after,
    schedule_anchor,
)

T = 1_700_000_000.0  # a login time, epoch seconds
D = 600.0
I = 300.0  # noqa: E741


def test_anchor_is_login_plus_initial_delay() -> None:
    assert schedule_anchor(T, D) == T + D


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (T, T + D),  # before the first due: the first due
        (T + D - 0.5, T + D),
        (T + D, T + D + I),  # strictly after now
        (T + D + 1, T + D + I),
        (T + D + I - 0.001, T + D + I),
        (T + D + I, T + D + 2 * I),
        (T + D + 10 * I + 7, T + D + 11 * I),
    ],
)
def test_next_due_after(now: float, expected: float) -> None:
    assert next_due_after(T, D, I, now) == expected


def test_next_due_after_with_zero_initial_delay() -> None:
    assert next_due_after(T, 0.0, I, T - 1) == T
    assert next_due_after(T, 0.0, I, T) == T + I


def test_first_due_at_or_after() -> None:
    assert first_due_at_or_after(T, D, I, T) == T + D
    assert first_due_at_or_after(T, D, I, T + D) == T + D
    assert first_due_at_or_after(T, D, I, T + D + 5 * I + 1) == T + D + 5 * I + 1


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        CheckSchedule(D, 0)
    with pytest.raises(ValueError, match="interval"):
        CheckSchedule(D, -1)


def test_new_session_is_due_after_the_initial_delay_then_every_interval() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    assert "s1" in s
    assert len(s) == 1
    assert s.next_due() == T + D
    assert s.pop_due(T + D - 0.001, 10) == []
    assert s.pop_due(T + D, 10) == [Due("s1", 0, T + D)]
    assert s.next_due() == T + D + I
    assert s.pop_due(T + D + I - 1, 10) == []
    # A tick that runs late does not shift the cadence.
    assert s.pop_due(T + D + I + 42, 10) == [Due("s1", 0, T + D + I)]
    assert s.next_due() == T + D + 2 * I


def test_long_outage_runs_once_then_resumes_the_original_cadence() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 3, now=T)
    now = T + D + 100 * I + 17  # the daemon was stalled for 100 intervals
    first = s.pop_due(now, 1000)
    assert first == [Due("s1", 3, T + D)]
    # No burst of the missed ticks.
    assert s.pop_due(now, 1000) == []
    nxt = s.next_due()
    assert nxt == T + D + 101 * I
    assert nxt is not None
    assert (nxt - (T + D)) / I == 101
    assert s.pop_due(nxt, 1000) == [Due("s1", 3, nxt)]
    assert s.next_due() == T + D + 102 * I


def test_session_loaded_after_restart_is_due_once_immediately() -> None:
    s = CheckSchedule(D, I)
    now = T + D + 7 * I + 100  # logged in long ago, overdue
    s.add("s1", T, 0, now=now)
    assert s.next_due() == now
    assert s.pop_due(now, 10) == [Due("s1", 0, now)]
    assert s.pop_due(now, 10) == []
    assert s.next_due() == T + D + 8 * I


def test_session_loaded_before_its_first_due_keeps_it() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T + 60)
    assert s.next_due() == T + D


def test_re_add_of_a_tracked_session_keeps_its_schedule() -> None:
    """An IP change (or a replayed login) does not move the schedule."""
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    s.add("s1", T + 250, 5, now=T + 250)
    assert len(s) == 1
    assert s.next_due() == T + D
    assert s.pop_due(T + D, 10) == [Due("s1", 0, T + D)]
    assert s.pop_due(T + D + I - 1, 10) == []
    assert s.next_due() == T + D + I


def test_remove_cancels() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    s.add("s2", T + 1, 0, now=T)
    s.remove("s1")
    s.remove("never-added")  # harmless
    assert "s1" not in s
    assert len(s) == 1
    assert s.next_due() == T + 1 + D
    assert [d.session_id for d in s.pop_due(T + 10 * D, 10)] == ["s2"]


def test_remove_everything_leaves_nothing_due() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    s.remove("s1")
    assert s.next_due() is None
    assert s.pop_due(T + 10 * D, 10) == []


def test_drop_partitions_only_drops_those_partitions() -> None:
    s = CheckSchedule(D, I)
    for i in range(9):
        s.add(f"s{i}", T + i, i % 3, now=T)
    assert sorted(s.sessions_of({1})) == ["s1", "s4", "s7"]
    assert s.drop_partitions({1, 2}) == 6
    assert len(s) == 3
    assert s.sessions_of({1, 2}) == []
    due = s.pop_due(T + D + 100, 100)
    assert [d.session_id for d in due] == ["s0", "s3", "s6"]
    assert all(d.partition == 0 for d in due)
    assert s.drop_partitions({7}) == 0


def test_drop_partitions_compacts_a_large_heap() -> None:
    s = CheckSchedule(D, I)
    for i in range(5000):
        s.add(f"s{i}", T, 0 if i < 10 else 1, now=T)
    assert s.drop_partitions({1}) == 4990
    assert len(s) == 10
    assert len(s._heap) < 5000  # stale entries were compacted away
    assert len(s.pop_due(T + D, 10_000)) == 10


def test_re_adding_a_removed_session_gets_a_fresh_schedule() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    s.remove("s1")
    t2 = T + 1000  # logged in again later
    s.add("s1", t2, 4, now=t2)
    # The stale heap entry (due T + D) is skipped, not reported.
    assert s.next_due() == t2 + D
    assert s.pop_due(T + D, 10) == []
    assert s.pop_due(t2 + D, 10) == [Due("s1", 4, t2 + D)]
    assert s.pop_due(t2 + D, 10) == []


def test_stale_entry_surfacing_inside_pop_due_is_skipped() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    s.remove("s1")
    s.add("s1", T, 0, now=T)  # same anchor: two heap entries, one stale
    assert s.pop_due(T + D, 10) == [Due("s1", 0, T + D)]
    assert s.pop_due(T + D, 10) == []


def test_pop_due_respects_its_limit_and_leaves_the_rest() -> None:
    s = CheckSchedule(D, I)
    for i in range(10):
        s.add(f"s{i}", T + i, 0, now=T)
    now = T + D + 20
    first = s.pop_due(now, 4)
    assert [d.session_id for d in first] == ["s0", "s1", "s2", "s3"]  # earliest first
    second = s.pop_due(now, 4)
    assert [d.session_id for d in second] == ["s4", "s5", "s6", "s7"]
    third = s.pop_due(now, 4)
    assert [d.session_id for d in third] == ["s8", "s9"]
    assert s.pop_due(now, 4) == []
    assert s.pop_due(now, 0) == []


def test_sessions_are_popped_in_due_order() -> None:
    s = CheckSchedule(D, I)
    s.add("late", T + 50, 0, now=T)
    s.add("early", T, 0, now=T)
    s.add("middle", T + 20, 0, now=T)
    due = s.pop_due(T + D + 100, 10)
    assert [d.session_id for d in due] == ["early", "middle", "late"]
    assert [d.due_at for d in due] == [T + D, T + D + 20, T + D + 50]


# ---- properties ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    t=st.floats(0, 4e9, allow_nan=False),
    d=st.floats(0, 86_400, allow_nan=False),
    i=st.floats(0.01, 86_400, allow_nan=False),
    offset=st.floats(-1e6, 1e8, allow_nan=False),
)
def test_property_next_due_after(t: float, d: float, i: float, offset: float) -> None:
    now = t + offset
    r = next_due_after(t, d, i, now)
    first = t + d
    tol = 1e-6 * max(1.0, abs(r), abs(now))
    assert r > now
    assert r >= first
    k = (r - first) / i
    assert k >= 0
    assert math.isclose(r, first + round(k) * i, rel_tol=0, abs_tol=tol)
    if r > first:
        assert r - i <= now + tol


@settings(max_examples=100, deadline=None)
@given(
    d=st.integers(0, 1000),
    i=st.integers(1, 500),
    logins=st.lists(st.integers(0, 5000), min_size=1, max_size=8),
    ticks=st.lists(st.integers(1, 800), min_size=1, max_size=30),
)
def test_property_each_pop_is_on_the_cadence_and_never_a_burst(
    d: int, i: int, logins: list[int], ticks: list[int]
) -> None:
    s = CheckSchedule(float(d), float(i))
    start = 0.0
    for n, login in enumerate(logins):
        s.add(f"s{n}", float(login), n % 2, now=start)
    now: float = start
    last_pop: dict[str, float] = {}
    for step in ticks:
        now += step
        due = s.pop_due(now, 10_000)
        seen = [x.session_id for x in due]
        assert len(seen) == len(set(seen))  # at most once per pop: no burst
        for x in due:
            anchor = float(logins[int(x.session_id[1:])]) + d
            assert x.due_at <= now
            assert x.due_at >= anchor
            k = (x.due_at - anchor) / i
            assert k == int(k)  # on the anchored cadence
            if x.session_id in last_pop:
                assert x.due_at > last_pop[x.session_id]
            last_pop[x.session_id] = x.due_at
        nxt = s.next_due()
        assert nxt is not None
        assert nxt > now


def test_add_many_schedules_like_add_one_by_one() -> None:
    """A restart loads a partition in one go; the result is what adding each gives."""
    now = T + D + 50
    logins = [T + i * 7.5 for i in range(40)]  # some overdue, some still ahead
    ids = [f"s{i}" for i in range(40)]
    one, many = CheckSchedule(D, I), CheckSchedule(D, I)
    for sid, t in zip(ids, logins, strict=True):
        one.add(sid, t, 3, now)
    assert many.add_many(ids, logins, 3, now) == 40
    assert len(many) == 40 and "s7" in many
    horizon = T + D + 3 * I
    assert many.pop_due(horizon, 1000) == one.pop_due(horizon, 1000)
    assert many.sessions_of({3}) == one.sessions_of({3})


def test_add_many_keeps_tracked_sessions_and_mixes_with_add() -> None:
    s = CheckSchedule(D, I)
    s.add("s1", T, 0, now=T)
    # s1 again (a replayed load) keeps its schedule; s2 is new; small adds push.
    assert s.add_many(["s1", "s2"], [T + 100, T + 5], 1, now=T) == 1
    assert s.add_many([], [], 1, now=T) == 0
    assert s.pop_due(T + D + 5, 10) == [Due("s1", 0, T + D), Due("s2", 1, T + D + 5)]
    s.remove("s2")
    assert s.add_many(["s2"], [T + 200], 2, now=T + D + 6) == 1
    assert s.pop_due(T + D + 200, 10) == [Due("s2", 2, T + D + 200)]


def test_sessions_added_in_bulk_carry_a_memo_slot_like_any_other() -> None:
    # A restart loads with add_many; the checks then read and set each session's memo.
    s = CheckSchedule(D, I)
    s.add_many(["s1", "s2"], [T, T + 1], 0, now=T)
    assert s.memo("s1") is None
    marker = object()
    s.set_memo("s1", marker)
    assert s.memo("s1") is marker
    due = s.pop_due(T + D + 1, 10)
    assert [(d.session_id, d.memo) for d in due] == [("s1", marker), ("s2", None)]

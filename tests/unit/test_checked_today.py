"""The day's record of checked sessions (daemon/core/checked_today.py): each session is written
once per UTC day, a failed write is tried again, and the day rolls over at UTC midnight."""

from __future__ import annotations

import datetime as dt

from e911d.daemon.core.checked_today import PAUSE, CheckedToday, due_for_pruning

DAY = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def test_a_session_is_claimed_once_a_day() -> None:
    today = CheckedToday()
    first = today.claim([("s1", "acme"), ("s2", "beta")], DAY)
    assert first.session_ids == ["s1", "s2"]
    assert first.account_ids == ["acme", "beta"]
    again = today.claim([("s2", "beta"), ("s3", "acme")], DAY + dt.timedelta(hours=14))
    assert again.session_ids == ["s3"]
    assert again.account_ids == ["acme"]
    assert len(today) == 3


def test_duplicates_within_one_chunk_are_written_once() -> None:
    claim = CheckedToday().claim([("s1", "acme"), ("s1", "acme")], DAY)
    assert claim.session_ids == ["s1"]
    assert len(claim) == 1


def test_the_utc_day_decides_not_the_local_one() -> None:
    today = CheckedToday()
    # 23:30 in UTC-5 is 04:30 UTC the next day.
    evening = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert today.claim([("s1", "acme")], evening).day == dt.date(2026, 12, 1)
    assert not today.claim([("s1", "acme")], dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC))


def test_a_new_day_records_every_session_again_and_forgets_the_old_ones() -> None:
    today = CheckedToday()
    today.claim([("s1", "acme"), ("s2", "acme")], DAY)
    tomorrow = today.claim([("s1", "acme")], DAY + dt.timedelta(days=1))
    assert tomorrow.session_ids == ["s1"]
    assert "s2" not in today
    assert len(today) == 1


def test_a_failed_write_is_claimed_again_once_the_pause_is_over() -> None:
    today = CheckedToday()
    claim = today.claim([("s1", "acme"), ("s2", "acme")], DAY)
    other = today.claim([("s3", "acme")], DAY)
    today.failed(claim, DAY)
    assert "s1" not in today
    assert "s3" in today
    # Nothing is written during the pause, not even sessions never recorded.
    paused = today.claim([("s1", "acme"), ("s4", "acme")], DAY + PAUSE / 2)
    assert not paused
    assert "s4" not in today
    later = today.claim([("s1", "acme"), ("s3", "acme"), ("s4", "acme")], DAY + PAUSE)
    assert later.session_ids == ["s1", "s4"]
    assert other.session_ids == ["s3"]


def test_a_release_from_a_day_already_over_changes_nothing() -> None:
    today = CheckedToday()
    old = today.claim([("s1", "acme")], DAY)
    today.claim([("s1", "acme")], DAY + dt.timedelta(days=1))
    today.failed(old, DAY + dt.timedelta(days=1))
    assert "s1" in today


def test_the_pause_can_be_shorter_than_the_default() -> None:
    """The checks service pauses one check interval when that is shorter than PAUSE."""
    today = CheckedToday(pause=dt.timedelta(seconds=2))
    today.failed(today.claim([("s1", "acme")], DAY), DAY)
    assert not today.claim([("s1", "acme")], DAY + dt.timedelta(seconds=1))
    assert today.claim([("s1", "acme")], DAY + dt.timedelta(seconds=2)).session_ids == ["s1"]


def test_the_days_record_forgets_the_sessions_no_longer_active() -> None:
    """A soak's logins (a new session id each) grew the record all day: it now follows
    the active sessions. One handed back the same day is claimed again."""
    today = CheckedToday()
    today.claim([("s1", "acme"), ("s2", "acme"), ("s3", "acme")], DAY)
    assert today.prune({"s2"}) == 2
    assert "s1" not in today
    assert "s2" in today
    assert today.claim([("s1", "acme"), ("s2", "acme")], DAY).session_ids == ["s1"]


def test_a_prune_waits_until_the_record_holds_twice_the_active_sessions() -> None:
    assert not due_for_pruning(held=1_000, active=0)
    assert due_for_pruning(held=1_001, active=0)
    assert not due_for_pruning(held=201_000, active=100_000)
    assert due_for_pruning(held=201_001, active=100_000)

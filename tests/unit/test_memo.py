"""Checks decided from memory (daemon/core/memo.py): never "nothing to do" when the database
path, given the same inputs, would raise or resolve; and the guards that keep memos
from outliving a change."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.core.evaluation import AccountDirectory, decide, evaluate
from e911d.daemon.core.memo import NEVER_CHANGED, Memo, MemoBook, memo_after, remembered
from e911d.daemon.core.model import Account, IpGroup, Location, OpenAlert, Outcome, User, Verdict
from e911d.schedulers import CheckSchedule

LOCATIONS = ("hq", "home", "lab")


@dataclass(frozen=True)
class World:
    """Everything a check of one session reads."""

    groups: tuple[tuple[int, str | None], ...]  # (third octet of 10.0.x.0/24, location)
    account_known: bool
    account_on: bool
    user_known: bool
    user_on: bool
    user_location: str | None
    ip_octet: int

    def verdict(self) -> Verdict:
        directory = AccountDirectory(
            "a",
            [Location(loc, loc.upper()) for loc in LOCATIONS],
            [
                IpGroup(f"g{i}", f"g{i}", loc, (ipaddress.ip_network(f"10.0.{octet}.0/24"),))
                for i, (octet, loc) in enumerate(self.groups)
            ],
        )
        account = Account("a", self.account_on) if self.account_known else None
        user = User("a", "u", self.user_on, self.user_location) if self.user_known else None
        return evaluate(directory, account, user, ipaddress.ip_address(f"10.0.{self.ip_octet}.7"))

    def versions(self) -> tuple[int, int]:
        """Stands for the triggers: any change to the directory or the users bumps one."""
        user_part = (
            self.account_known,
            self.account_on,
            self.user_known,
            self.user_on,
            self.user_location,
        )
        return (hash(self.groups), hash(user_part))


worlds = st.builds(
    World,
    groups=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([None, *LOCATIONS])), max_size=4
    ).map(tuple),
    account_known=st.booleans(),
    account_on=st.booleans(),
    user_known=st.booleans(),
    user_on=st.booleans(),
    user_location=st.sampled_from([None, "ghost", *LOCATIONS]),
    ip_octet=st.integers(0, 4),
)


def applied(verdict: Verdict, alert: OpenAlert | None, snoozed: frozenset[str]) -> OpenAlert | None:
    """The open alert after the database path applied its decision."""
    decision = decide(verdict, alert, snoozed)
    if decision.resolve is not None:
        alert = None
    if decision.raise_fingerprint is not None:
        loc = verdict.assigned_location
        alert = OpenAlert("new", decision.raise_fingerprint, loc.location_id if loc else None)
    return alert


@settings(max_examples=400, deadline=None)
@given(
    first=worlds,
    later=worlds,
    same=st.booleans(),
    alert_fp=st.sampled_from([None, "other", "verdict"]),
    snooze=st.booleans(),
)
def test_property_memory_never_skips_a_transition_the_database_would_make(
    first: World, later: World, same: bool, alert_fp: str | None, snooze: bool
) -> None:
    verdict = first.verdict()
    fp = verdict.fingerprint if alert_fp == "verdict" else alert_fp
    alert = None if fp is None else OpenAlert("old", fp, "hq")
    snoozed = frozenset({verdict.fingerprint}) if snooze and verdict.fingerprint else frozenset()
    # The database path decides twice in a row on the same inputs, as a transition is
    # confirmed by the next check before anything is remembered.
    alert = applied(verdict, alert, snoozed)
    decision = decide(verdict, alert, snoozed)
    memo = memo_after("a", first.versions(), verdict, decision)
    # The session's own IP and alert changes make its memo go (ingest); only the
    # directory and the users can change behind its back, and they bump a version.
    now = replace(later, ip_octet=first.ip_octet) if not same else first
    outcome = remembered(memo, now.versions())
    if outcome is None:
        return
    again = now.verdict()
    for later_snoozes in (frozenset(), snoozed):
        assert decide(again, alert, later_snoozes).changes_nothing
    assert outcome == again.outcome


@settings(deadline=None)  # a busy machine (two workers) can stall an example past 200 ms
@given(worlds, st.sampled_from([None, "other"]))
def test_property_a_transition_or_a_snooze_is_never_remembered(
    world: World, fp: str | None
) -> None:
    verdict = world.verdict()
    alert = None if fp is None else OpenAlert("old", fp, None)
    for snoozed in (frozenset(), frozenset({verdict.fingerprint or "-"})):
        decision = decide(verdict, alert, snoozed)
        memo = memo_after("a", world.versions(), verdict, decision)
        if not decision.changes_nothing or decision.snoozed:
            assert memo is None
        else:
            assert memo == Memo("a", world.versions(), verdict.outcome)


def test_remembered_needs_equal_versions() -> None:
    memo = Memo("a", (3, 4), Outcome.MATCH)
    assert remembered(memo, (3, 4)) is Outcome.MATCH
    assert remembered(memo, (3, 5)) is None
    assert remembered(memo, (4, 4)) is None
    assert remembered(memo, None) is None
    assert remembered(None, (3, 4)) is None


# -- the book: versions, notices, races ---------------------------------------------


def book_with(*sids: str, enabled: bool = True) -> tuple[MemoBook, CheckSchedule]:
    schedule = CheckSchedule(0, 60)
    for sid in sids:
        schedule.add(sid, 0.0, int(sid[-1]), 0.0)
    return MemoBook(schedule, enabled), schedule


MATCH_A = Memo("a", (1, 1), Outcome.MATCH)


def recorded(book: MemoBook, schedule: CheckSchedule, **memos: Memo | None) -> None:
    book.end(book.begin(), memos)


def test_nothing_is_decided_from_memory_before_the_versions_are_read() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=MATCH_A)
    assert book.decide(schedule.memo("s1")) is None
    book.refresh_end(book.refresh_begin(), [("a", 1, 1)])
    assert book.decide(schedule.memo("s1")) is Outcome.MATCH


def test_a_version_moved_on_sends_the_check_to_the_database() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=MATCH_A)
    book.refresh_end(book.refresh_begin(), [("a", 1, 2)])
    assert book.decide(schedule.memo("s1")) is None


def test_an_account_never_changed_reads_as_zero_versions() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=Memo("new", NEVER_CHANGED, Outcome.UNKNOWN_USER))
    book.refresh_end(book.refresh_begin(), [("a", 1, 1)])
    assert book.decide(schedule.memo("s1")) is Outcome.UNKNOWN_USER


def test_a_notice_keeps_its_account_in_the_database_until_a_later_read() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=MATCH_A)
    started = book.refresh_begin()
    book.account_changed("a")  # heard while the read was on its way: it may predate it
    book.refresh_end(started, [("a", 1, 1)])
    assert book.decide(schedule.memo("s1")) is None
    book.refresh_end(book.refresh_begin(), [("a", 1, 1)])
    assert book.decide(schedule.memo("s1")) is Outcome.MATCH


def test_a_notice_of_another_account_changes_nothing_here() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=MATCH_A)
    book.refresh_end(book.refresh_begin(), [("a", 1, 1)])
    book.account_changed("b")
    assert book.decide(schedule.memo("s1")) is Outcome.MATCH


def test_everything_changed_stops_memory_until_a_later_read() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=MATCH_A)
    started = book.refresh_begin()
    book.account_changed(None)
    book.refresh_end(started, [("a", 1, 1)])
    assert book.decide(schedule.memo("s1")) is None
    book.refresh_end(book.refresh_begin(), [("a", 1, 1)])
    assert book.decide(schedule.memo("s1")) is Outcome.MATCH


def test_a_session_changed_during_a_database_check_is_not_remembered() -> None:
    book, schedule = book_with("s1", "s2")
    started = book.begin()
    book.sessions_changed(["s1"])  # ingest stored a new IP after the check read the old
    book.end(started, {"s1": MATCH_A, "s2": MATCH_A})
    assert schedule.memo("s1") is None
    assert schedule.memo("s2") is MATCH_A
    # Once no check that started before the change is in flight, s1 is remembered again.
    recorded(book, schedule, s1=MATCH_A)
    assert schedule.memo("s1") is MATCH_A


def test_a_change_is_remembered_while_an_older_check_is_still_in_flight() -> None:
    book, schedule = book_with("s1")
    old = book.begin()
    book.sessions_changed(["s1"])
    newer = book.begin()
    book.end(newer, {"s1": MATCH_A})  # read after the change: fine
    assert schedule.memo("s1") is MATCH_A
    book.end(old, {"s1": MATCH_A})  # read before it: must not stand
    assert schedule.memo("s1") is None


def test_changing_a_session_forgets_its_memo() -> None:
    book, schedule = book_with("s1")
    recorded(book, schedule, s1=MATCH_A)
    book.sessions_changed(["s1", "unknown"])
    assert schedule.memo("s1") is None


def test_a_handover_forgets_the_partitions_memos_and_what_checks_in_flight_read() -> None:
    book, schedule = book_with("s1", "s2")
    recorded(book, schedule, s1=MATCH_A, s2=MATCH_A)
    started = book.begin()
    book.handover({1})
    assert schedule.memo("s1") is None
    assert schedule.memo("s2") is MATCH_A
    book.end(started, {"s1": MATCH_A, "s2": None})
    assert schedule.memo("s1") is None
    assert schedule.memo("s2") is None


def test_disabled_memory_decides_nothing_and_remembers_nothing() -> None:
    book, schedule = book_with("s1", enabled=False)
    book.refresh_end(book.refresh_begin(), [("a", 1, 1)])
    recorded(book, schedule, s1=MATCH_A)
    assert schedule.memo("s1") is None
    assert book.decide(MATCH_A) is None


def test_equal_memos_are_shared_between_sessions() -> None:
    book, schedule = book_with("s1", "s2")
    recorded(book, schedule, s1=Memo("a", (1, 1), Outcome.MATCH))
    recorded(book, schedule, s2=Memo("a", (1, 1), Outcome.MATCH))
    assert schedule.memo("s1") is schedule.memo("s2")


def test_the_schedule_hands_the_memo_out_with_the_due_session_and_drops_it_with_it() -> None:
    book, schedule = book_with("s1", "s2")
    recorded(book, schedule, s1=MATCH_A)
    due = {d.session_id: d.memo for d in schedule.pop_due(1.0, 10)}
    assert due == {"s1": MATCH_A, "s2": None}
    schedule.drop_partitions({1})
    schedule.add("s1", 0.0, 1, 0.0)
    assert schedule.memo("s1") is None
    schedule.set_memo("gone", MATCH_A)
    assert "gone" not in schedule


def test_changes_with_no_database_check_in_flight_leave_nothing_behind() -> None:
    book, schedule = book_with("s1")
    book.sessions_changed([f"s{i}" for i in range(10_000)])
    assert book._recent == {}  # steady state: memory only, ingest running all along
    started = book.begin()
    book.sessions_changed(["s1"])
    assert book._recent == {"s1": started + 1}
    book.end(started, {"s1": MATCH_A})
    assert schedule.memo("s1") is None
    assert book._recent == {}

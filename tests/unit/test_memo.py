"""Checks decided from memory (daemon/core/memo.py): never "nothing to do" when the database
path, given the same inputs, would raise or resolve; and the guards that keep the
inputs memory holds from outliving a change."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.core.decision_inputs import AccountInputs, SessionInputs, UserInputs
from e911d.daemon.core.evaluation import AccountDirectory, decide, evaluate
from e911d.daemon.core.memo import MemoBook
from e911d.daemon.core.model import Account, IpGroup, Location, OpenAlert, Outcome, User, Verdict
from e911d.daemon.core.unlocated import is_unlocated
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

    def directory(self) -> AccountDirectory:
        return AccountDirectory(
            "a",
            [Location(loc, loc.upper()) for loc in LOCATIONS],
            [
                IpGroup(f"g{i}", f"g{i}", loc, (ipaddress.ip_network(f"10.0.{octet}.0/24"),))
                for i, (octet, loc) in enumerate(self.groups)
            ],
        )

    def account(self) -> Account | None:
        return Account("a", self.account_on) if self.account_known else None

    def user(self) -> User | None:
        return User("a", "u", self.user_on, self.user_location) if self.user_known else None

    def ip(self) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(f"10.0.{self.ip_octet}.7")

    def verdict(self) -> Verdict:
        """What the database path computes from its rows (daemon/store/check_batches.py)."""
        directory = self.directory() if self.account_known else None
        return evaluate(directory, self.account(), self.user(), self.ip())

    def held(self, loaded_at: int = 0) -> AccountInputs:
        """The same world as memory holds it."""
        user = self.user()
        users = {} if user is None else {"u": UserInputs(user)}
        return AccountInputs(
            "a", self.account(), self.directory(), self.versions(), users, loaded_at
        )

    def session(self, alert: OpenAlert | None) -> SessionInputs:
        return SessionInputs("a", "u", self.ip().packed, None, alert)

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


def book_with(*sids: str, enabled: bool = True) -> tuple[MemoBook, CheckSchedule]:
    schedule = CheckSchedule(0, 60)
    for sid in sids:
        schedule.add(sid, 0.0, int(sid[-1]), 0.0)
    return MemoBook(schedule, enabled), schedule


def holding(book: MemoBook, world: World, alert: OpenAlert | None = None, *sids: str) -> None:
    """Memory read ``world`` (account and sessions) with nothing changing meanwhile."""
    started = book.begin()
    book.accounts_read(started, [world.held(started)])
    started = book.begin()
    book.sessions_read(started, [(sid, world.session(alert)) for sid in sids or ("s1",)])


@settings(max_examples=600, deadline=None)
@given(
    world=worlds,
    alert_fp=st.sampled_from([None, "other", "verdict"]),
    alert_location=st.sampled_from([None, "hq", "home", "same"]),
    snooze=st.booleans(),
)
def test_property_memory_decides_as_the_database_would_on_the_same_inputs(
    world: World, alert_fp: str | None, alert_location: str | None, snooze: bool
) -> None:
    """A first check included: memory concludes "nothing to do" exactly when the
    database path, reading the same rows, would change nothing; anything else goes
    to the database."""
    verdict = world.verdict()
    assigned = verdict.assigned_location.location_id if verdict.assigned_location else None
    location = assigned if alert_location == "same" else alert_location
    fp = verdict.fingerprint if alert_fp == "verdict" else alert_fp
    alert = None if fp is None else OpenAlert("id", fp, location)
    book, _ = book_with("s1")
    holding(book, world, alert)
    hit = book.decide("s1", now=0.0)
    snoozed = frozenset({verdict.fingerprint}) if snooze and verdict.fingerprint else frozenset()
    database = decide(verdict, alert, snoozed)
    if hit is None:
        # Only a transition (or a snooze, which memory leaves to the database) is asked.
        assert not decide(verdict, alert).changes_nothing
        return
    assert database.changes_nothing
    assert hit.outcome == verdict.outcome
    assert hit.unlocated == is_unlocated(verdict)
    # Asked again on the same inputs: the same answer, from the decision kept.
    again = book.decide("s1", now=0.0)
    assert again is not None and again.outcome == verdict.outcome


@settings(max_examples=300, deadline=None)
@given(first=worlds, later=worlds, alert_fp=st.sampled_from([None, "other", "verdict"]))
def test_property_a_changed_world_is_never_decided_on_the_old_one(
    first: World, later: World, alert_fp: str | None
) -> None:
    """Whatever changed behind memory's back (a lost notice), the versions re-read
    drop what memory held: it decides on the new world or asks the database."""
    # The session's own IP changes through ingest, which drops its inputs: only the
    # directory and the users can change behind memory's back, and they bump a version.
    later = replace(later, ip_octet=first.ip_octet)
    verdict = first.verdict()
    fp = verdict.fingerprint if alert_fp == "verdict" else alert_fp
    alert = applied(verdict, None if fp is None else OpenAlert("id", fp, "hq"), frozenset())
    book, _ = book_with("s1")
    holding(book, first, alert)
    book.refresh_end(book.refresh_begin(), [("a", *later.versions())])
    hit = book.decide("s1", now=0.0)
    if first.versions() != later.versions():
        assert hit is None
    elif hit is not None:
        assert decide(later.verdict(), alert).changes_nothing


HQ_WORLD = World(((1, "hq"),), True, True, True, True, "hq", 1)
HOME_WORLD = World(((1, "hq"),), True, True, True, True, "home", 1)


def test_a_first_check_is_decided_in_memory() -> None:
    book, _ = book_with("s1")
    assert book.decide("s1") is None  # nothing held yet
    holding(book, HQ_WORLD)
    hit = book.decide("s1")
    assert hit is not None and hit.outcome is Outcome.MATCH
    assert hit.account_id == "a"


def test_a_first_mismatch_goes_to_the_database_and_an_alerted_one_stays_in_memory() -> None:
    book, _ = book_with("s1")
    holding(book, HOME_WORLD)
    assert book.decide("s1") is None  # a raise: the database decides
    fp = HOME_WORLD.verdict().fingerprint
    assert fp is not None
    holding(book, HOME_WORLD, OpenAlert("", fp, "home"))
    hit = book.decide("s1")
    assert hit is not None and hit.outcome is Outcome.MISMATCH


def test_nothing_is_decided_without_the_account() -> None:
    book, _ = book_with("s1")
    started = book.begin()
    book.sessions_read(started, [("s1", HQ_WORLD.session(None))])
    assert book.decide("s1") is None
    assert book.missing(["s1"]) == ([], {"a"})


def test_a_user_notice_makes_only_that_users_sessions_uncertain() -> None:
    book, _ = book_with("s1", "s2")
    world = HQ_WORLD
    started = book.begin()
    users = {
        "u": UserInputs(User("a", "u", True, "hq")),
        "v": UserInputs(User("a", "v", True, "hq")),
    }
    account = AccountInputs("a", world.account(), world.directory(), (1, 1), users, started)
    book.accounts_read(started, [account])
    started = book.begin()
    book.sessions_read(
        started,
        [
            ("s1", SessionInputs("a", "u", world.ip().packed, None, None)),
            ("s2", SessionInputs("a", "v", world.ip().packed, None, None)),
        ],
    )
    assert book.decide("s1") is not None and book.decide("s2") is not None
    book.user_changed("a", "u")
    assert book.decide("s1") is None
    assert book.decide("s2") is not None  # the account's other users stay in memory
    assert book.missing(["s1", "s2"]) == ([], {"a"})  # read the account again
    again = book.begin()
    book.accounts_read(again, [AccountInputs("a", *_parts(account), again)])
    assert book.decide("s1") is not None


def _parts(a: AccountInputs) -> tuple:  # type: ignore[type-arg]
    return (a.account, a.directory, a.versions, a.users)


def test_an_account_notice_during_a_read_keeps_the_read_out() -> None:
    book, _ = book_with("s1")
    started = book.begin()
    book.account_changed("a")  # heard while the read was on its way: it may predate it
    book.accounts_read(started, [HQ_WORLD.held(started)])
    book.sessions_read(book.begin(), [("s1", HQ_WORLD.session(None))])
    assert book.decide("s1") is None
    holding(book, HQ_WORLD)
    assert book.decide("s1") is not None


def test_everything_changed_drops_every_account() -> None:
    book, _ = book_with("s1")
    holding(book, HQ_WORLD)
    book.account_changed(None)
    assert book.decide("s1") is None
    started = book.begin()
    book.account_changed(None)
    book.accounts_read(started, [HQ_WORLD.held(started)])
    assert book.decide("s1") is None


def test_moved_versions_drop_the_account_and_equal_ones_keep_it() -> None:
    book, _ = book_with("s1")
    holding(book, HQ_WORLD)
    book.refresh_end(book.refresh_begin(), [("a", *HQ_WORLD.versions())])
    assert book.decide("s1") is not None
    d, u = HQ_WORLD.versions()
    book.refresh_end(book.refresh_begin(), [("a", d, u + 1)])  # a lost notice
    assert book.decide("s1") is None
    assert book.missing(["s1"]) == ([], {"a"})


def test_a_session_changed_during_a_read_is_not_held() -> None:
    book, schedule = book_with("s1", "s2")
    holding(book, HQ_WORLD, None, "s0")
    started = book.begin()
    book.sessions_changed(["s1"])  # ingest stored a new IP after the read saw the old
    book.sessions_read(started, [("s1", HQ_WORLD.session(None)), ("s2", HQ_WORLD.session(None))])
    assert schedule.memo("s1") is None
    assert schedule.memo("s2") is not None
    assert book._recent == {}  # nothing in flight: nothing kept


def test_a_database_check_drops_what_it_may_have_changed_and_older_reads_of_it() -> None:
    book, schedule = book_with("s1")
    read = book.begin()
    check = book.begin()
    book.end(check, ["s1"])  # raised, say, after the read saw no alert
    book.sessions_read(read, [("s1", HQ_WORLD.session(None))])
    assert schedule.memo("s1") is None
    holding(book, HQ_WORLD)
    assert schedule.memo("s1") is not None
    book.end(book.begin(), ["s1"])
    assert schedule.memo("s1") is None


def test_a_handover_drops_the_partitions_inputs_and_reads_in_flight() -> None:
    book, schedule = book_with("s1", "s2")
    holding(book, HQ_WORLD, None, "s1", "s2")
    started = book.begin()
    book.handover({1})
    assert schedule.memo("s1") is None
    assert schedule.memo("s2") is not None
    book.sessions_read(started, [("s1", HQ_WORLD.session(None))])
    assert schedule.memo("s1") is None


def test_disabled_memory_decides_nothing_and_holds_nothing() -> None:
    book, schedule = book_with("s1", enabled=False)
    holding(book, HQ_WORLD)
    assert schedule.memo("s1") is None
    assert book.decide("s1") is None


def test_an_expiring_confirmed_network_sends_the_user_to_the_database() -> None:
    book, _ = book_with("s1")
    started = book.begin()
    user = UserInputs(User("a", "u", True, "hq"), None, confirmed_until=100.0)
    account = AccountInputs(
        "a", HQ_WORLD.account(), HQ_WORLD.directory(), (1, 1), {"u": user}, started
    )
    book.accounts_read(started, [account])
    book.sessions_read(book.begin(), [("s1", HQ_WORLD.session(None))])
    assert book.decide("s1", now=99.0) is not None
    assert book.decide("s1", now=100.0) is None


def test_sessions_share_their_ids_and_open_alerts() -> None:
    book, _ = book_with("s1")
    one = book.shared.session("a" * 3, "u" * 3, HQ_WORLD.ip(), None, "f" * 32, "hq")
    two = book.shared.session("".join("aaa"), "".join("uuu"), HQ_WORLD.ip(), None, "f" * 32, "hq")
    assert one.account_id is two.account_id and one.user_id is two.user_id
    assert one.alert is two.alert


def test_a_kept_decision_is_not_used_once_the_account_is_read_again() -> None:
    book, _ = book_with("s1")
    holding(book, HQ_WORLD)
    session = book.decide("s1")
    assert session is not None and session.outcome is Outcome.MATCH
    # The user was re-assigned home: the account read again, the session unchanged.
    started = book.begin()
    book.accounts_read(started, [HOME_WORLD.held(started)])
    assert book.decide("s1") is None  # a raise now: the database decides


def test_partitions_handed_over_are_read_whole_once_memory_is_on() -> None:
    book, _ = book_with("s1")
    book.handover({1, 2})
    assert book.unread == {1, 2}
    off, _ = book_with("s1", enabled=False)
    off.handover({1})
    assert off.unread == set()


def test_interning_tables_start_afresh_past_their_bound(monkeypatch) -> None:
    from e911d.daemon.core import decision_inputs

    monkeypatch.setattr(decision_inputs, "MAX_NAMES", 3)
    monkeypatch.setattr(decision_inputs, "MAX_ALERTS", 2)
    shared = decision_inputs.Shared()
    for i in range(10):
        shared.name(f"n{i}")
        shared.alert(f"f{i}", None)
    assert len(shared._names) <= 3
    assert len(shared._alerts) <= 2
    assert shared.name("n9") == "n9"

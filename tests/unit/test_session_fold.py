"""Folding session events into rows (docs/spec.md#check-schedule, #session-events-topic): pure and
idempotent."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.core.events import SessionEvent, SessionEventKind
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.session_fold import Dismissal, FoldResult, SessionRow, fold_session_events

K = SessionEventKind
T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=1)
TTL = dt.timedelta(hours=12)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def ev(
    kind: SessionEventKind,
    minutes: float,
    ip: str | None = "10.0.0.1",
    *,
    sid: str = "s1",
    account: str = "acme",
    user: str = "alice",
    alert_id: str | None = None,
    partition: int = 0,
    network: NetworkSignals | None = None,
) -> tuple[int, SessionEvent]:
    has_ip = kind in (K.LOGIN, K.IP_CHANGED)
    return (
        partition,
        SessionEvent(
            kind,
            f"e-{kind.value}-{minutes}-{ip}",
            at(minutes),
            account,
            user,
            sid,
            ip=ipaddress.ip_address(ip) if has_ip and ip else None,
            alert_id=alert_id,
            network=network if has_ip else None,
        ),
    )


def fold(
    events: list[tuple[int, SessionEvent]],
    existing: dict[str, SessionRow] | None = None,
    now: dt.datetime = NOW,
) -> FoldResult:
    return fold_session_events(existing or {}, events, now, TTL)


def row(minutes: float = 0, **kw: object) -> SessionRow:
    base: dict[str, object] = {
        "session_id": "s1",
        "account_id": "acme",
        "user_id": "alice",
        "ip": "10.0.0.1",
        "logged_in_at": at(minutes),
        "last_event_at": at(minutes),
        "partition": 0,
    }
    base.update(kw)
    return SessionRow(**base)  # type: ignore[arg-type]


def test_login_starts_a_session_anchored_at_the_event_time() -> None:
    result = fold([ev(K.LOGIN, 5, "198.51.100.7", partition=3)])
    r = result.rows["s1"]
    assert r == SessionRow("s1", "acme", "alice", "198.51.100.7", at(5), at(5), 3)
    assert r.active
    assert result.started == {"s1"}
    assert result.ended == set()
    assert result.ignored == 0


def test_ip_changed_for_an_unknown_session_starts_one() -> None:
    result = fold([ev(K.IP_CHANGED, 7, "2001:db8::1")])
    r = result.rows["s1"]
    assert r.logged_in_at == at(7)
    assert r.ip == "2001:db8::1"
    assert r.active
    assert result.started == {"s1"}


def test_ip_changed_updates_ip_but_not_logged_in_at() -> None:
    result = fold([ev(K.LOGIN, 0, "10.0.0.1"), ev(K.IP_CHANGED, 3, "10.0.0.2", partition=1)])
    r = result.rows["s1"]
    assert r.ip == "10.0.0.2"
    assert r.logged_in_at == at(0)
    assert r.last_event_at == at(3)
    assert r.partition == 1
    # Against an existing row, too: it is not "started" again.
    again = fold([ev(K.IP_CHANGED, 9, "10.0.0.3")], {"s1": row(0)})
    assert again.rows["s1"].ip == "10.0.0.3"
    assert again.rows["s1"].logged_in_at == at(0)
    assert again.started == set()


def test_an_older_event_does_not_overwrite_a_newer_ip() -> None:
    result = fold(
        [
            ev(K.LOGIN, 0, "10.0.0.1"),
            ev(K.IP_CHANGED, 10, "10.0.0.2"),
            ev(K.IP_CHANGED, 5, "10.9.9.9"),
        ]
    )
    r = result.rows["s1"]
    assert r.ip == "10.0.0.2"
    assert r.last_event_at == at(10)
    assert result.ignored == 1
    # A replayed (older) login does not rewind it either.
    replay = fold([ev(K.LOGIN, 0, "10.0.0.1")], result.rows)
    assert replay.rows == {}
    assert replay.ignored == 1


def test_logout_ends_the_session() -> None:
    result = fold([ev(K.LOGOUT, 30)], {"s1": row(0)})
    r = result.rows["s1"]
    assert r.ended_at == at(30)
    assert not r.active
    assert result.ended == {"s1"}
    assert result.started == set()


def test_login_and_logout_in_one_batch_is_neither_started_nor_ended() -> None:
    result = fold([ev(K.LOGIN, 0), ev(K.LOGOUT, 1)])
    assert result.rows["s1"].ended_at == at(1)
    assert result.started == set()
    assert result.ended == set()


def test_login_not_after_a_tombstone_is_ignored() -> None:
    tomb = row(0, ended_at=at(30), last_event_at=at(30))
    for minutes in (10, 30):
        result = fold([ev(K.LOGIN, minutes)], {"s1": tomb})
        assert result.rows == {}
        assert result.started == set()
        assert result.ignored == 1


def test_later_login_reopens_the_session_with_a_fresh_anchor_and_keeps_alert_seq() -> None:
    tomb = row(0, ended_at=at(30), last_event_at=at(30), alert_seq=4, ip="10.0.0.1")
    result = fold([ev(K.LOGIN, 45, "10.0.0.9", partition=2)], {"s1": tomb})
    r = result.rows["s1"]
    assert r.active
    assert r.logged_in_at == at(45)
    assert r.last_event_at == at(45)
    assert r.ip == "10.0.0.9"
    assert r.alert_seq == 4
    assert r.partition == 2
    assert result.started == {"s1"}


def test_logout_of_an_unknown_session_leaves_a_tombstone() -> None:
    result = fold([ev(K.LOGOUT, 20)])
    tomb = result.rows["s1"]
    assert tomb.ended_at == at(20)
    assert not tomb.active
    assert result.started == set()
    assert result.ended == set()
    # The late login (delivered after the logout) stays ended.
    late = fold([ev(K.LOGIN, 5)], result.rows)
    assert late.rows == {}
    assert late.started == set()
    both = fold([ev(K.LOGOUT, 20), ev(K.LOGIN, 5)])
    assert both.rows["s1"].ended_at == at(20)
    assert both.started == set()


def test_login_older_than_the_ttl_is_stored_already_ended() -> None:
    old = NOW - TTL - dt.timedelta(seconds=1)
    minutes = (old - T0).total_seconds() / 60
    result = fold([ev(K.LOGIN, minutes)])
    r = result.rows["s1"]
    assert r.ended_at == r.logged_in_at == old
    assert result.started == set()
    # Just inside the TTL it is active.
    fresh = NOW - TTL + dt.timedelta(seconds=1)
    inside = fold([ev(K.LOGIN, (fresh - T0).total_seconds() / 60)])
    assert inside.rows["s1"].active
    assert inside.started == {"s1"}


def test_event_of_another_account_or_user_is_ignored() -> None:
    existing = {"s1": row(0)}
    for account, user in (("other", "alice"), ("acme", "mallory")):
        for kind in (K.LOGIN, K.IP_CHANGED, K.LOGOUT):
            result = fold([ev(kind, 5, "10.6.6.6", account=account, user=user)], existing)
            assert result.rows == {}, kind
            assert result.ignored == 1
            assert result.ended == set()


def test_event_of_another_owner_does_not_take_over_a_tombstone() -> None:
    result = fold([ev(K.LOGOUT, 5), ev(K.LOGIN, 10, user="mallory")])
    assert result.rows["s1"].user_id == "alice"
    assert not result.rows["s1"].active
    assert result.ignored == 1


def test_dismissal_of_an_active_session() -> None:
    result = fold([ev(K.ALERT_DISMISSED, 5, None, alert_id="al-1")], {"s1": row(0)})
    assert result.dismissals == [Dismissal("s1", "al-1", at(5))]
    assert result.rows == {}
    # Of an ended or unknown session: ignored.
    tomb = row(0, ended_at=at(1))
    ended = fold([ev(K.ALERT_DISMISSED, 5, None, alert_id="al-1")], {"s1": tomb})
    assert ended.dismissals == []
    assert ended.ignored == 1
    unknown = fold([ev(K.ALERT_DISMISSED, 5, None, alert_id="al-1")])
    assert unknown.dismissals == []
    assert unknown.rows == {}


@pytest.mark.parametrize(("account", "user"), [("acme", "mallory"), ("evil", "alice")])
def test_dismissal_by_another_user_or_account_is_ignored(account: str, user: str) -> None:
    result = fold(
        [ev(K.ALERT_DISMISSED, 5, None, alert_id="al-1", account=account, user=user)],
        {"s1": row(0)},
    )
    assert result.dismissals == []
    assert result.dismissals_ignored == 1


def test_sessions_are_independent() -> None:
    result = fold([ev(K.LOGIN, 0, sid="a"), ev(K.LOGIN, 1, sid="b"), ev(K.LOGOUT, 2, sid="a")])
    assert not result.rows["a"].active
    assert result.rows["b"].active
    assert result.started == {"b"}


def test_replay_after_out_of_order_logout_is_idempotent() -> None:
    """A logout older than the last ip change must give the same state on replay.

    Events: login 09:01, ip_changed 09:10, logout 09:05 (a skewed producer clock).
    """
    events = [ev(K.LOGIN, 1), ev(K.IP_CHANGED, 10, "10.0.0.2"), ev(K.LOGOUT, 5)]
    once = fold(events)
    again = fold(events, once.rows)
    assert {**once.rows, **again.rows} == once.rows
    assert fold(events + events).rows == once.rows


# ---- idempotence property -----------------------------------------------------------

# ---- network signals (docs/spec.md#network-signals)
# ------------------------------------------------------

AP_A = NetworkSignals("f06e0bc20321")
AP_B = NetworkSignals("f06e0bc20322")
PORT = NetworkSignals(None, "001a2b3c4d5e", "gi1/0/12")


def test_login_stores_the_network_it_reports() -> None:
    net = NetworkSignals("f06e0bc20321", "001a2b3c4d5e", "gi1/0/12")
    r = fold([ev(K.LOGIN, 0, network=net)]).rows["s1"]
    assert (r.bssid, r.switch_chassis, r.switch_port) == (
        "f06e0bc20321",
        "001a2b3c4d5e",
        "gi1/0/12",
    )
    assert fold([ev(K.LOGIN, 0)]).rows["s1"] == row(0)  # none reported: all None


def test_a_new_access_point_on_the_same_ip_is_a_changed_row() -> None:
    """Like a new IP: ingest saves what differs from the locked row and forgets the memo
    of every row the fold hands back."""
    before = row(0, bssid="f06e0bc20321")
    result = fold(
        [ev(K.IP_CHANGED, 4, "10.0.0.1", network=NetworkSignals("f06e0bc20322"))], {"s1": before}
    )
    after = result.rows["s1"]
    assert after != before
    assert (after.ip, after.bssid, after.last_event_at) == ("10.0.0.1", "f06e0bc20322", at(4))
    assert after.logged_in_at == at(0) and result.started == set() == result.ended


def test_a_network_change_at_the_same_instant_still_changes_the_row() -> None:
    before = row(0, bssid="f06e0bc20321")
    net = NetworkSignals(None, "sw1", "7")
    after = fold([ev(K.IP_CHANGED, 0, "10.0.0.1", network=net)], {"s1": before}).rows["s1"]
    assert after == row(0, switch_chassis="sw1", switch_port="7")


def test_an_event_without_network_clears_the_signals() -> None:
    """The latest event says what the client is on now: no Wi-Fi reported, no BSSID."""
    before = row(0, bssid="f06e0bc20321", switch_chassis="sw1")
    after = fold([ev(K.IP_CHANGED, 2, "10.0.0.2")], {"s1": before}).rows["s1"]
    assert (after.bssid, after.switch_chassis, after.switch_port) == (None, None, None)


def test_an_older_event_does_not_rewind_the_network() -> None:
    result = fold(
        [
            ev(K.LOGIN, 0, network=AP_A),
            ev(K.IP_CHANGED, 10, network=AP_B),
            ev(K.IP_CHANGED, 5, network=PORT),
        ]
    )
    assert result.rows["s1"].bssid == "f06e0bc20322"
    assert result.rows["s1"].switch_chassis is None
    assert result.ignored == 1


def test_logout_keeps_the_last_network_and_a_reopening_login_brings_its_own() -> None:
    ended = fold([ev(K.LOGOUT, 3)], {"s1": row(0, bssid="f06e0bc20321")}).rows["s1"]
    assert not ended.active and ended.bssid == "f06e0bc20321"
    reopened = fold([ev(K.LOGIN, 9, network=PORT)], {"s1": ended}).rows["s1"]
    assert reopened.active
    assert (reopened.bssid, reopened.switch_chassis) == (None, "001a2b3c4d5e")


def test_replay_with_networks_is_idempotent() -> None:
    events = [
        ev(K.LOGIN, 0, network=AP_A),
        ev(K.IP_CHANGED, 2, network=AP_B),
        ev(K.IP_CHANGED, 2, network=PORT),  # same instant: the later offset wins
        ev(K.IP_CHANGED, 1, network=AP_A),  # late: ignored
    ]
    once = fold(events).rows
    assert (once["s1"].bssid, once["s1"].switch_port) == (None, "gi1/0/12")
    assert {**once, **fold(events, dict(once)).rows} == once
    assert fold(events + events).rows == once


SIDS = ["s1", "s2", "s3"]
networks = st.sampled_from([None, AP_A, AP_B, PORT, NetworkSignals("f06e0bc20321", "sw")])
kinds = st.sampled_from([K.LOGIN, K.IP_CHANGED, K.LOGOUT, K.ALERT_DISMISSED])


@st.composite
def event_lists(draw: st.DrawFn) -> list[tuple[int, SessionEvent]]:
    out: list[tuple[int, SessionEvent]] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(kinds)
        # Minutes relative to T0; a few far in the past to exercise the TTL.
        minutes = draw(st.sampled_from([-1000, *range(0, 12)]))
        out.append(
            ev(
                kind,
                minutes,
                draw(st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1"])),
                sid=draw(st.sampled_from(SIDS)),
                user=draw(st.sampled_from(["alice", "alice", "alice", "bob"])),
                alert_id="al" if kind is K.ALERT_DISMISSED else None,
                partition=draw(st.integers(0, 1)),
                network=draw(networks),
            )
        )
    return out


def apply(
    existing: dict[str, SessionRow], events: list[tuple[int, SessionEvent]]
) -> tuple[dict[str, SessionRow], FoldResult]:
    result = fold_session_events(existing, events, NOW, TTL)
    return {**existing, **result.rows}, result


@settings(max_examples=300, deadline=None)
@given(event_lists())
def test_property_fold_is_idempotent(events: list[tuple[int, SessionEvent]]) -> None:
    once, first = apply({}, events)
    twice, second = apply(once, events)
    assert twice == once
    assert second.started == set()
    assert second.ended == set()
    doubled, _ = apply({}, events + events)
    assert doubled == once
    # Row invariants.
    for r in once.values():
        assert r.last_event_at >= r.logged_in_at
        assert r.ended_at is None or r.ended_at >= r.logged_in_at
    assert first.started <= {sid for sid, r in once.items() if r.active}


@settings(max_examples=200, deadline=None)
@given(event_lists(), st.integers(0, 12))
def test_property_batch_boundaries_do_not_matter(
    events: list[tuple[int, SessionEvent]], cut: int
) -> None:
    """Folding in two batches gives the rows of folding in one."""
    whole, _ = apply({}, events)
    first, _ = apply({}, events[:cut])
    split, _ = apply(first, events[cut:])
    assert split == whole


# ---- against a reference model ------------------------------------------------------
#
# The properties above hold for a fold that ignores every event. This one compares the
# fold with a deliberately plain model of the documented rules, written without looking
# at how the fold is organised: every session is a state machine of its own (absent →
# active ⇄ ended), run over that session's events alone, one rule per branch.

TOMBSTONE_IP = "0.0.0.0"  # a logout of an unknown session has no address


def _signals(network: NetworkSignals | None) -> dict[str, str | None]:
    """A row's signal fields: what the latest login or ip_changed reported, or none."""
    n = network or NetworkSignals()
    return {"bssid": n.bssid, "switch_chassis": n.chassis_id, "switch_port": n.port_id}


def _row_signals(row: SessionRow) -> dict[str, str | None]:
    return {
        "bssid": row.bssid,
        "switch_chassis": row.switch_chassis,
        "switch_port": row.switch_port,
    }


def reference_step(
    row: SessionRow | None,
    partition: int,
    e: SessionEvent,
    now: dt.datetime,
    ttl: dt.timedelta,
) -> SessionRow | None:
    """One session's next state after one of its events."""
    t = e.time
    if e.kind is K.ALERT_DISMISSED:
        return row  # a dismissal never changes a row
    if row is not None and (row.account_id, row.user_id) != (e.account_id, e.user_id):
        return row  # another account's or user's event for this session: ignored
    if e.kind is K.LOGOUT:
        if row is None:  # a tombstone: a late login of this session stays ended
            return SessionRow(
                e.session_id, e.account_id, e.user_id, TOMBSTONE_IP, t, t, partition, ended_at=t
            )
        ends = t >= row.logged_in_at if row.ended_at is None else t > row.ended_at
        if not ends:  # before the login, or not after the end already recorded
            return row
        return SessionRow(
            row.session_id,
            row.account_id,
            row.user_id,
            row.ip,
            row.logged_in_at,
            max(t, row.last_event_at),
            row.partition,
            ended_at=t,
            alert_seq=row.alert_seq,
            **_row_signals(row),  # a logout says nothing about the network
        )
    # A login, or an ip_changed (which starts a session it does not know).
    ip = str(e.ip)
    starts = row is None or (
        row.ended_at is not None and t > row.ended_at and t > row.last_event_at
    )
    if starts:  # new, or reopened: anchored at the event's time; already over past the TTL
        return SessionRow(
            e.session_id,
            e.account_id,
            e.user_id,
            ip,
            t,
            t,
            partition,
            ended_at=t if now - t > ttl else None,
            alert_seq=0 if row is None else row.alert_seq,
            **_signals(e.network),
        )
    assert row is not None
    if row.ended_at is None and t >= row.last_event_at:  # never rewinds newer state
        return SessionRow(
            row.session_id,
            row.account_id,
            row.user_id,
            ip,
            row.logged_in_at,
            t,
            partition,
            alert_seq=row.alert_seq,
            **_signals(e.network),
        )
    return row  # older than what it has seen, or too old to reopen it


def reference_fold(
    existing: dict[str, SessionRow],
    events: list[tuple[int, SessionEvent]],
    now: dt.datetime,
    ttl: dt.timedelta,
) -> tuple[dict[str, SessionRow], set[str], set[str], list[Dismissal]]:
    """Final rows, started, ended and accepted dismissals, one session at a time."""
    final = dict(existing)
    dismissals: list[tuple[int, Dismissal]] = []
    for sid in sorted({e.session_id for _, e in events}):
        row = existing.get(sid)
        for i, (partition, e) in enumerate(events):
            if e.session_id != sid:
                continue
            if (
                e.kind is K.ALERT_DISMISSED
                and e.alert_id is not None
                and row is not None
                and row.ended_at is None
                and (row.account_id, row.user_id) == (e.account_id, e.user_id)
            ):
                dismissals.append((i, Dismissal(sid, e.alert_id, e.time)))
            row = reference_step(row, partition, e, now, ttl)
        if row is not None:
            final[sid] = row

    def live(rows: dict[str, SessionRow], sid: str) -> bool:
        return sid in rows and rows[sid].ended_at is None

    started = {sid for sid in final if live(final, sid) and not live(existing, sid)}
    ended = {sid for sid in existing if live(existing, sid) and not live(final, sid)}
    return final, started, ended, [d for _, d in sorted(dismissals, key=lambda x: x[0])]


# Minutes from T0: far past the TTL, both sides of its edge (NOW - TTL is at -660),
# and a dozen minutes of ordinary traffic.
MINUTES = [-1000, -661, -660, -659, *range(0, 12)]


@st.composite
def existing_rows(draw: st.DrawFn) -> dict[str, SessionRow]:
    rows: dict[str, SessionRow] = {}
    for sid in draw(st.lists(st.sampled_from(SIDS), unique=True, max_size=len(SIDS))):
        login_at = at(draw(st.sampled_from(MINUTES)))
        last = login_at + dt.timedelta(minutes=draw(st.sampled_from([0, 1, 5])))
        ended = draw(st.sampled_from([None, "login", "last", "after"]))
        ended_at = {
            None: None,
            "login": login_at,
            "last": last,
            "after": last + dt.timedelta(minutes=2),
        }[ended]
        rows[sid] = SessionRow(
            sid,
            draw(st.sampled_from(["acme", "acme", "other"])),
            draw(st.sampled_from(["alice", "bob"])),
            TOMBSTONE_IP if ended == "login" else "10.0.0.1",
            login_at,
            last,
            draw(st.integers(0, 1)),
            ended_at=ended_at,
            alert_seq=draw(st.integers(0, 3)),
            **_signals(draw(networks)),
        )
    return rows


@st.composite
def mixed_events(draw: st.DrawFn) -> list[tuple[int, SessionEvent]]:
    out: list[tuple[int, SessionEvent]] = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(kinds)
        out.append(
            ev(
                kind,
                draw(st.sampled_from(MINUTES)),
                draw(st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1"])),
                sid=draw(st.sampled_from(SIDS)),
                account=draw(st.sampled_from(["acme", "acme", "acme", "other"])),
                user=draw(st.sampled_from(["alice", "alice", "bob"])),
                alert_id=draw(st.sampled_from(["al-1", "al-2"]))
                if kind is K.ALERT_DISMISSED
                else None,
                partition=draw(st.integers(0, 1)),
                network=draw(networks),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(existing_rows(), mixed_events())
def test_property_fold_agrees_with_a_reference_model(
    existing: dict[str, SessionRow], events: list[tuple[int, SessionEvent]]
) -> None:
    result = fold_session_events(existing, events, NOW, TTL)
    rows, started, ended, dismissals = reference_fold(existing, events, NOW, TTL)
    assert {**existing, **result.rows} == rows
    assert result.started == started
    assert result.ended == ended
    assert result.dismissals == dismissals
    # Only what the events touched is handed back to be written.
    touched = {e.session_id for _, e in events if e.kind is not K.ALERT_DISMISSED}
    assert set(result.rows) <= touched


def test_reference_model_is_not_vacuous() -> None:
    """The model itself moves: a login starts, a logout ends, a dismissal is accepted."""
    login_ev = ev(K.LOGIN, 1, "10.0.0.9")
    rows, started, ended, _ = reference_fold({}, [login_ev], NOW, TTL)
    assert rows["s1"].ip == "10.0.0.9" and rows["s1"].ended_at is None
    assert started == {"s1"} and ended == set()
    rows, started, ended, dismissals = reference_fold(
        {"s1": row(0)}, [ev(K.ALERT_DISMISSED, 2, None, alert_id="al-1"), ev(K.LOGOUT, 3)], NOW, TTL
    )
    assert rows["s1"].ended_at == at(3)
    assert (started, ended) == (set(), {"s1"})
    assert dismissals == [Dismissal("s1", "al-1", at(2))]

"""Sessions on networks nobody configured (daemon/core/unlocated.py): which checks
count as "no group located", and the day's bookkeeping of what to record: once per
session, network and UTC day; a session decided from memory is sent to the database
once a day; a failed write is tried again."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest

from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.model import (
    Account,
    IpGroup,
    Location,
    MatchedBy,
    Outcome,
    SignalMatch,
    User,
    Verdict,
)
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.network_key import NetworkKey, bssid_key, ip_prefix_key
from e911d.daemon.core.unlocated import Sighting, UnlocatedToday, is_unlocated

DAY = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
HQ = Location("hq", "Headquarters")
LAB = Location("lab", "Lab")
K1 = ip_prefix_key(ipaddress.ip_address("192.0.2.7"))
K2 = bssid_key("f06e0bc20321")


def _directory(*groups: IpGroup) -> AccountDirectory:
    return AccountDirectory("acme", (HQ, LAB), groups)


HQ_NET = IpGroup("g-hq", "HQ", "hq", (ipaddress.ip_network("203.0.113.0/24"),))
VPN = IpGroup("vpn", "VPN", None, (ipaddress.ip_network("198.51.100.0/24"),), locating=False)
AP = IpGroup("ap", "AP", "hq", (), bssids=("f06e0bc20321",))


def _verdict(ip: str, network: NetworkSignals | None = None, *, on: bool = True) -> Verdict:
    return evaluate(
        _directory(HQ_NET, VPN, AP),
        Account("acme", False),
        User("acme", "u1", on, "hq"),
        ipaddress.ip_address(ip),
        network=network,
    )


def test_a_session_nothing_matched_is_unlocated_whatever_the_outcome() -> None:
    verdict = _verdict("192.0.2.7")
    assert verdict.outcome is Outcome.MISMATCH  # hq has groups: all_locations
    assert is_unlocated(verdict)


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.9", None),  # a locating group's network
        ("198.51.100.7", None),  # a non-locating group: an administrator configured it
        ("192.0.2.7", NetworkSignals(bssid="f06e0bc20321")),  # the access point
        # An unknown access point falls through to the IP, which a group matches.
        ("203.0.113.9", NetworkSignals(bssid="aaaaaaaaaaaa")),
    ],
)
def test_a_session_any_group_matched_is_not_unlocated(
    ip: str, network: NetworkSignals | None
) -> None:
    assert not is_unlocated(_verdict(ip, network))


def test_checks_that_never_reach_matching_record_nothing() -> None:
    assert not is_unlocated(_verdict("192.0.2.7", on=False))  # disabled
    assert not is_unlocated(Verdict(Outcome.UNKNOWN_USER))
    assert not is_unlocated(Verdict(Outcome.NO_LOCATIONS))


def test_geolocation_or_a_user_confirmation_is_not_a_group() -> None:
    geo = Verdict(Outcome.MISMATCH, match=SignalMatch(MatchedBy.GEOIP, frozenset({"hq"}), ()))
    assert is_unlocated(geo)


def _s(sid: str, key: NetworkKey = K1, user: str = "u1") -> Sighting:
    return Sighting(sid, "acme", user, key)


def test_a_session_is_claimed_once_per_network_and_day() -> None:
    today = UnlocatedToday()
    first = today.claim(["s1", "s2"], [_s("s1"), _s("s2")], DAY)
    assert [s.session_id for s in first.sightings] == ["s1", "s2"]
    assert first.day == dt.date(2026, 11, 30)
    assert not today.claim(["s1"], [_s("s1")], DAY + dt.timedelta(hours=1))
    moved = today.claim(["s1"], [_s("s1", K2)], DAY + dt.timedelta(hours=2))
    assert [s.key for s in moved.sightings] == [K2]  # another network: recorded too


def test_the_utc_day_decides_and_a_new_day_claims_again() -> None:
    today = UnlocatedToday()
    evening = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert today.claim(["s1"], [_s("s1")], evening).day == dt.date(2026, 12, 1)
    assert not today.claim(["s1"], [_s("s1")], dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC))
    again = today.claim(["s1"], [_s("s1")], dt.datetime(2026, 12, 2, 0, 0, tzinfo=dt.UTC))
    assert again.day == dt.date(2026, 12, 2)
    assert len(again) == 1


def test_memory_sends_a_session_recorded_yesterday_to_the_database_once() -> None:
    today = UnlocatedToday()
    today.claim(["s1", "s2"], [_s("s1")], DAY)  # s2 was located
    today.roll(DAY)
    assert not today.needs_database("s1")  # recorded today
    today.roll(DAY + dt.timedelta(days=1))
    assert today.needs_database("s1")
    assert not today.needs_database("s2")
    # The database check records it (or finds it located): memory decides again.
    today.claim(["s1"], [_s("s1")], DAY + dt.timedelta(days=1))
    assert not today.needs_database("s1")
    # A session not seen for a whole day is forgotten (it ended).
    today.roll(DAY + dt.timedelta(days=2))
    assert today.needs_database("s1")
    today.roll(DAY + dt.timedelta(days=3))
    assert not today.needs_database("s1")


def test_a_located_session_is_no_longer_sent_to_the_database() -> None:
    today = UnlocatedToday()
    today.claim(["s1"], [_s("s1")], DAY)
    today.roll(DAY + dt.timedelta(days=1))
    today.claim(["s1"], [], DAY + dt.timedelta(days=1))  # decided, located
    assert not today.needs_database("s1")


def test_a_failed_write_is_claimed_again_after_the_pause() -> None:
    today = UnlocatedToday(pause=dt.timedelta(seconds=10))
    claim = today.claim(["s1"], [_s("s1")], DAY)
    today.failed(claim, DAY)
    today.roll(DAY)
    assert today.needs_database("s1")  # memory must not hide it
    # During the pause nothing is claimed, and the session stays pending.
    assert not today.claim(["s1"], [_s("s1")], DAY + dt.timedelta(seconds=5))
    assert today.needs_database("s1")
    retry = today.claim(["s1"], [_s("s1")], DAY + dt.timedelta(seconds=11))
    assert len(retry) == 1
    assert not today.needs_database("s1")


def test_a_failed_claim_of_a_day_already_over_is_forgotten() -> None:
    today = UnlocatedToday()
    claim = today.claim(["s1"], [_s("s1")], DAY)
    today.roll(DAY + dt.timedelta(days=1))
    today.failed(claim, DAY + dt.timedelta(days=1))
    assert today.needs_database("s1")  # carried from yesterday: recorded today
    assert len(today) == 0


def test_the_days_record_forgets_the_sessions_no_longer_active() -> None:
    today = UnlocatedToday()
    today.claim(["s1", "s2"], [_s("s1"), _s("s2")], DAY)
    assert today.prune({"s2"}) == 1
    assert len(today) == 1
    # Handed back the same day: recorded again (the write changes nothing).
    assert [s.session_id for s in today.claim(["s1"], [_s("s1")], DAY).sightings] == ["s1"]
    # Those due from yesterday that ended are forgotten too.
    today.roll(DAY + dt.timedelta(days=1))
    assert today.needs_database("s1") and today.needs_database("s2")
    today.prune({"s1"})
    assert today.needs_database("s1")
    assert not today.needs_database("s2")

"""``e911d explain`` and ``e911d directory confirmed`` show what a user confirmed
(docs/spec.md#networks-a-user-confirmed): the entry that decided, and the entries as a
table or JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json

import pytest

from e911d.daemon.commands.confirmed.command import id_argument, usage_problem
from e911d.daemon.commands.confirmed.render import render_json, render_text
from e911d.daemon.commands.explain import build_explanation, parse_input_ip, to_json
from e911d.daemon.commands.explain import render_text as text
from e911d.daemon.core.evaluation import AccountDirectory
from e911d.daemon.core.model import Account, ConfirmedNetwork, IpGroup, Location, User
from e911d.daemon.core.network_key import bssid_key, ip_prefix_key, switch_port_key
from e911d.daemon.store.confirmed_networks import ListedEntry

HQ, HOME = Location("hq", "Headquarters"), Location("home", "Home office")
GROUPS = (IpGroup("hq-net", "HQ", "hq", (ipaddress.ip_network("203.0.113.0/24"),)),)
T = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
KEY = ip_prefix_key(ipaddress.ip_address("198.51.100.23"))
ENTRY = ConfirmedNetwork("acme", "u1", KEY, "home", T, T)


def _explain(assigned: str, entries: tuple[ConfirmedNetwork, ...]):  # type: ignore[no-untyped-def]
    return build_explanation(
        user_id="u1",
        ip=parse_input_ip("198.51.100.23"),
        account=Account("acme", True),
        user=User("acme", "u1", False, assigned),
        directory=AccountDirectory("acme", (HQ, HOME), GROUPS),
        ip_groups=GROUPS,
        confirmed=entries,
    )


def test_explain_shows_the_entry_that_decided_a_mismatch() -> None:
    ex = _explain("hq", (ENTRY,))
    out = text(ex)
    assert (
        "Confirmed    the user confirmed Home office (home) on ip_prefix 198.51.100.0/24, "
        "last 2026-11-26T09:00:00Z  <- decided"
    ) in out
    assert "Matched by   user_confirmed" in out
    assert "Recommended  user_confirmed: Home office (home)" in out
    assert "so Home office is recommended (user_confirmed)" in ex.sentence
    data = to_json(ex)
    assert data["matched_by"] == "user_confirmed"
    assert data["confirmed"] == {
        "network": {"kind": "ip_prefix", "key": "198.51.100.0/24"},
        "location_id": "home",
        "first_confirmed_at": "2026-11-26T09:00:00Z",
        "last_confirmed_at": "2026-11-26T09:00:00Z",
    }
    assert data["confirmed_networks"] == 1


def test_explain_shows_a_match_by_the_users_own_entry() -> None:
    ex = _explain("home", (ENTRY,))
    assert ex.verdict.outcome == "match"
    assert "and it is the assigned location" in ex.sentence
    assert "<- decided" in text(ex).split("Confirmed", 1)[1].splitlines()[0]


def test_explain_never_uses_another_users_entry() -> None:
    bobs = ConfirmedNetwork("acme", "bob", KEY, "home", T, T)
    ex = _explain("hq", (bobs,))
    assert ex.verdict.confirmed is None
    assert "Confirmed    the user has confirmed no network" in text(ex)
    other_key = ConfirmedNetwork("acme", "u1", bssid_key("f06e0bc20321"), "home", T, T)
    ex = _explain("hq", (other_key,))
    assert "Confirmed    1 network(s) of this user; none decided this session" in text(ex)


LISTED = [
    ListedEntry(ENTRY, "Home office"),
    ListedEntry(
        ConfirmedNetwork("acme", "u2", switch_port_key("001b54aabbcc", "gi1/0/12"), "gone", T, T),
        None,
    ),
]


def test_directory_confirmed_text() -> None:
    out = render_text(LISTED, dt.timedelta(days=90))
    lines = out.splitlines()
    assert lines[0].split() == [
        "ACCOUNT",
        "USER",
        "NETWORK",
        "LOCATION",
        "LAST",
        "CONFIRMED",
        "(UTC)",
        "EXPIRES",
        "(UTC)",
    ]
    assert "ip_prefix 198.51.100.0/24" in lines[1]
    assert "home (Home office)" in lines[1]
    assert "2026-11-26 09:00" in lines[1] and "2027-02-24 09:00" in lines[1]
    assert "switch_port 00:1b:54:aa:bb:cc port gi1/0/12" in lines[2]
    assert render_text([], dt.timedelta(days=1)) == "no confirmed networks\n"
    assert render_text([], dt.timedelta(days=1), forgotten=2) == "forgot 2 entries\n"


def test_directory_confirmed_json() -> None:
    data = json.loads(render_json(LISTED[:1], dt.timedelta(days=90), forgotten=1))
    assert list(data) == ["forgotten", "entries"]
    assert data["entries"] == [
        {
            "account_id": "acme",
            "user_id": "u1",
            "network": {"kind": "ip_prefix", "key": "198.51.100.0/24"},
            "location_id": "home",
            "location_name": "Home office",
            "first_confirmed_at": "2026-11-26T09:00:00Z",
            "last_confirmed_at": "2026-11-26T09:00:00Z",
            "expires_at": "2027-02-24T09:00:00Z",
        }
    ]


@pytest.mark.parametrize(
    ("account", "user", "forget", "problem"),
    [
        (None, "u1", False, "--user needs --account"),
        (None, None, True, "--forget needs --account"),
        (None, None, False, None),
        ("acme", "u1", True, None),
    ],
)
def test_directory_confirmed_arguments(
    account: str | None, user: str | None, forget: bool, problem: str | None
) -> None:
    found = usage_problem(account, user, forget)
    assert (found is None) == (problem is None)
    if problem is not None:
        assert found is not None and problem in found


@pytest.mark.parametrize("bad", ["", "a\x00", "a\nb", "x" * 257])
def test_ids_are_refused_as_events_refuse_them(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        id_argument(bad)
    assert id_argument("acme-ü") == "acme-ü"

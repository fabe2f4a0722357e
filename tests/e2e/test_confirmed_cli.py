"""Networks a user confirmed, end to end (docs/spec.md#networks-a-user-confirmed): through
``e911d run`` and the topics, ``e911d explain`` and ``e911d directory confirmed``.

Alice works from home on a network the administrator never mapped. She is assigned
HQ, so the first check offers every location; she picks "Home office" in the app from
that session, and e911d remembers it. From then on, on that network: assigned home is
a match; assigned HQ again (the administrator's console) is a ``user_confirmed``
mismatch recommending home alone. Bob, on the same network, never gets Alice's home:
he is offered every location, as before. Forgetting Alice's entry brings back
``all_locations`` for her too.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import kill, run_cli
from tests.e2e.test_cli import _tail, daemon_env, start_daemon
from tests.support import Producer, Received, TopicWatcher, ce, login

pytestmark = pytest.mark.e2e

ACCOUNT = "acme"
ALICE_HOME_IP, BOB_IP = "198.51.100.23", "198.51.100.77"  # one /24, mapped by no group
ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}


def _directory() -> list[bytes]:
    events = [ce("e911.account.upserted", {"account_id": ACCOUNT, "e911_recommendations": True})]
    for lid, name in (("hq", "Headquarters"), ("home", "Home office"), ("lab", "Lab")):
        data = {"account_id": ACCOUNT, "location_id": lid, "name": name, "address": ADDRESS}
        events.append(ce("e911.location.upserted", data))
    group = {
        "account_id": ACCOUNT,
        "ip_group_id": "hq-net",
        "name": "HQ",
        "location_id": "hq",
        "addresses": ["203.0.113.0/24"],
    }
    events.append(ce("e911.ip_group.upserted", group))
    for uid in ("alice", "bob"):
        user = {
            "account_id": ACCOUNT,
            "user_id": uid,
            "e911_recommendations": True,
            "e911_location_id": "hq",
        }
        events.append(ce("e911.user.upserted", user))
    return events


def _location_changed(location: str, via: str, session: str | None = None) -> bytes:
    data: dict[str, Any] = {
        "account_id": ACCOUNT,
        "user_id": "alice",
        "e911_location_id": location,
        "changed_via": via,
    }
    if session is not None:
        data["session_id"] = session
    return ce("e911.user.location_changed", data)


def _ids(m: Received) -> list[str]:
    return [loc["location_id"] for loc in m.data["recommendation"]["locations"]]


async def test_a_confirmed_home_is_recommended_to_its_user_and_to_nobody_else(
    broker, topics, database, tmp_path: Path
) -> None:
    env = daemon_env(broker, topics, database, f"g{uuid.uuid4().hex[:8]}")
    log = tmp_path / "e911d.log"
    proc, _port = await start_daemon(env, log)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, _directory(), ACCOUNT)
            await p.send(
                topics.session_events, login(ACCOUNT, "alice", "s-a", ALICE_HOME_IP), "alice"
            )
            (first,) = await alerts.wait_count("e911.alert.raised", 1, "s-a", within=40)
            assert first.data["recommendation"]["kind"] == "all_locations"

            # Alice picks her home in the app, from that session: remembered, and her
            # alert is settled by her own update.
            changed = _location_changed("home", "app", "s-a")
            await p.send(topics.directory_events, changed, ACCOUNT)
            (settled,) = await alerts.wait_count("e911.alert.resolved", 1, "s-a", within=30)
            assert settled.data["reason"] == "location_updated"
            code, out, err = await run_cli(
                database, "directory", "confirmed", "--account", ACCOUNT, "--json"
            )
            assert code == 0, err
            (entry,) = json.loads(out)["entries"]
            assert entry["user_id"] == "alice"
            assert entry["network"] == {"kind": "ip_prefix", "key": "198.51.100.0/24"}
            assert entry["location_id"] == "home"

            # The console assigns HQ again: on her home network, home alone is offered.
            await p.send(topics.directory_events, _location_changed("hq", "console"), ACCOUNT)
            raised = await alerts.wait_count("e911.alert.raised", 2, "s-a", within=30)
            confirmed = raised[1]
            assert confirmed.data["recommendation"]["kind"] == "user_confirmed"
            assert confirmed.data["matched_by"] == "user_confirmed"
            assert _ids(confirmed) == ["home"]

            # Bob on the same network: every location, as if nobody had confirmed anything.
            await p.send(topics.session_events, login(ACCOUNT, "bob", "s-b", BOB_IP), "bob")
            (bob,) = await alerts.wait_count("e911.alert.raised", 1, "s-b", within=40)
            assert bob.data["recommendation"]["kind"] == "all_locations"
            assert bob.data["matched_by"] is None
            assert _ids(bob) == ["hq", "home", "lab"]  # by name

            # explain names the entry that decided.
            code, out, err = await run_cli(database, "explain", "--session", "s-a")
            assert code == 0, err
            assert "Confirmed    the user confirmed Home office (home) on ip_prefix" in out
            assert "user_confirmed" in out
            code, out, err = await run_cli(database, "explain", "--session", "s-b")
            assert code == 0, err
            assert "Confirmed    the user has confirmed no network" in out

            # Forgetting Alice's entries: her next decision offers every location again.
            code, out, err = await run_cli(
                database,
                "directory",
                "confirmed",
                "--account",
                ACCOUNT,
                "--user",
                "alice",
                "--forget",
            )
            assert code == 0, err
            assert out.startswith("forgot 1 entry")
            again = await alerts.wait_count("e911.alert.raised", 3, "s-a", within=30)
            assert again[2].data["recommendation"]["kind"] == "all_locations"
            # Bob's alert stayed as it was.
            assert len(alerts.of_type("e911.alert.raised", "s-b")) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 12)
        finally:
            await kill(proc)
    assert code == 0, _tail(log)


async def test_directory_confirmed_refuses_bad_arguments(database) -> None:
    for args, needle in (
        (("--user", "alice"), "--user needs --account"),
        (("--forget",), "--forget needs --account"),
    ):
        code, out, err = await run_cli(database, "directory", "confirmed", *args)
        assert code == 2, (args, out, err)
        assert needle in err
    code, _, err = await run_cli(database, "directory", "confirmed", "--account", "a\x01b")
    assert code == 2
    assert "control character" in err
    code, out, err = await run_cli(database, "directory", "confirmed")
    assert code == 0, err
    assert out == "no confirmed networks\n"

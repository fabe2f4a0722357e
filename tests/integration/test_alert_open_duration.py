"""``e911_alert_open_duration_seconds`` is observed at resolution on every resolve path
(docs/spec.md#metrics): a check (location_matched, superseded, location_undetermined,
recommendations_disabled, user_unknown), ingest (logout: session_ended; dismissed), a
user's location change (location_updated). Expiry (housekeeping: session_ended) is in
test_alert_history.py. A path that stopped observing leaves its reason's ``_count``
behind ``e911_alerts_resolved_total``.

Each path has its own account (tests.support.directory: hq = 203.0.113.0/24,
home = 198.51.100.0/24; u1 assigned hq, at home: an ``ip_group_match`` alert).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.support import (
    Producer,
    TopicWatcher,
    ce,
    directory,
    dismissed,
    ip_changed,
    login,
    logout,
    sample,
)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
ELSEWHERE = "192.0.2.77"
WAIT = 30.0

# account -> (IP at login, what resolves its alert, the reason expected)
Resolve = Callable[[str, str], bytes]
PATHS: dict[str, tuple[str, str, Resolve, str]] = {
    "matched": (
        HOME_IP,
        "sessions",
        lambda a, s: ip_changed(a, "u1", s, HQ_IP),
        "location_matched",
    ),
    "moved": (HOME_IP, "sessions", lambda a, s: ip_changed(a, "u1", s, ELSEWHERE), "superseded"),
    "nolonger": (
        ELSEWHERE,
        "directory",
        lambda a, s: ce("e911.ip_group.deleted", {"account_id": a, "ip_group_id": "hq-net"}),
        "location_undetermined",
    ),
    "off": (
        HOME_IP,
        "directory",
        lambda a, s: ce("e911.account.upserted", {"account_id": a, "e911_recommendations": False}),
        "recommendations_disabled",
    ),
    "gone": (
        HOME_IP,
        "directory",
        lambda a, s: ce("e911.user.deleted", {"account_id": a, "user_id": "u1"}),
        "user_unknown",
    ),
    "left": (HOME_IP, "sessions", lambda a, s: logout(a, "u1", s), "session_ended"),
    "fixed": (
        HOME_IP,
        "directory",
        lambda a, s: ce(
            "e911.user.location_changed",
            {"account_id": a, "user_id": "u1", "e911_location_id": "home", "changed_via": "app"},
        ),
        "location_updated",
    ),
}


def _count(app, reason: str) -> float:
    return sample(app, "e911_alert_open_duration_seconds_count", reason=reason)


async def test_every_resolve_path_observes_how_long_the_alert_was_open(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        for account, (ip, *_rest) in PATHS.items():
            await p.send_all(topics.directory_events, directory(account), key=account)
            await p.send(topics.session_events, login(account, "u1", f"s-{account}", ip), "u1")
        await p.send_all(topics.directory_events, directory("nodding"), key="nodding")
        await p.send(topics.session_events, login("nodding", "u1", "s-nodding", HOME_IP), "u1")
        raised = await alerts.wait_count("e911.alert.raised", len(PATHS) + 1, within=WAIT)
        ids = {m.data["session_id"]: m.data["alert_id"] for m in raised}
        reasons = [r for *_rest, r in PATHS.values()] + ["dismissed"]
        before = {r: _count(app, r) for r in reasons}
        sums = {r: sample(app, "e911_alert_open_duration_seconds_sum", reason=r) for r in reasons}
        for account, (_ip, topic, resolve, _reason) in PATHS.items():
            target = topics.session_events if topic == "sessions" else topics.directory_events
            await p.send(
                target, resolve(account, f"s-{account}"), "u1" if topic == "sessions" else account
            )
        await p.send(
            topics.session_events, dismissed("nodding", "u1", "s-nodding", ids["s-nodding"]), "u1"
        )
        resolved = await alerts.wait_count("e911.alert.resolved", len(reasons), within=WAIT)
    got = {m.data["session_id"]: m.data["reason"] for m in resolved}
    expected = {f"s-{a}": r for a, (*_rest, r) in PATHS.items()} | {"s-nodding": "dismissed"}
    assert got == expected
    for reason in reasons:
        assert _count(app, reason) == before[reason] + 1, reason
        after = sample(app, "e911_alert_open_duration_seconds_sum", reason=reason)
        assert after > sums[reason], reason
        # Every resolution of the reason was observed, on whatever path.
        assert _count(app, reason) == sample(app, "e911_alerts_resolved_total", reason=reason)
    assert await running.stop() == 0

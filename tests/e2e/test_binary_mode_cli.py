"""A producer in the CloudEvents Kafka binary content mode gets the same alert as one in
structured mode, through the console script as an operator runs it
(docs/spec.md#event-contracts)."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest

from tests.e2e.cli import kill
from tests.e2e.test_cli import _tail, daemon_env, start_daemon
from tests.support import Producer, TopicWatcher, binary, directory, login

pytestmark = pytest.mark.e2e

HOME_IP = "198.51.100.23"
PER_ALERT = ("alert_id", "user_id", "session_id", "checked_at")


async def test_a_binary_mode_login_raises_the_same_alert_as_a_structured_one(
    broker, topics, database, tmp_path
):
    env = daemon_env(broker, topics, database, f"g{uuid.uuid4().hex[:8]}")
    log = tmp_path / "e911d.log"
    proc, _ = await start_daemon(env, log)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            users = {"u-structured": (True, "hq"), "u-binary": (True, "hq")}
            await p.send_all(topics.directory_events, directory(users=users), "acme")
            structured = login("acme", "u-structured", "s-structured", HOME_IP)
            await p.send(topics.session_events, structured, "u-structured")
            value, headers = binary(
                login("acme", "u-binary", "s-binary", HOME_IP), "application/json; charset=utf-8"
            )
            await p.send(topics.session_events, value, "u-binary", headers)
            raised = await alerts.wait_count("e911.alert.raised", 2, within=30)
        by_session = {m.data["session_id"]: m for m in raised}
        assert set(by_session) == {"s-structured", "s-binary"}
        one, other = by_session["s-structured"], by_session["s-binary"]
        assert {k: v for k, v in one.data.items() if k not in PER_ALERT} == {
            k: v for k, v in other.data.items() if k not in PER_ALERT
        }
        assert one.data["matched_by"] == "ip"
        assert one.data["recommendation"]["kind"] == "ip_group_match"
        for session_id, m in by_session.items():
            assert m.event["subject"] == session_id
            assert m.key == m.data["user_id"].encode()
        assert '"event": "event_invalid"' not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 12)
        finally:
            await kill(proc)  # if it did not stop in time
    assert code == 0, _tail(log)

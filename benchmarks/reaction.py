"""Reaction time: from a user action to the alert event a subscriber receives.

``python -m benchmarks.reaction [--runs N]`` starts the embedded broker and
PostgreSQL, runs the daemon in-process (production code paths) with a long check
interval (600 s), so that anything it does within the run is the immediate
re-evaluation, never a scheduled check. One user is logged in at the home network
while assigned to HQ, so an alert is open. Each run then:

1. produces ``e911.user.location_changed`` (HQ → Home) to the directory topic and
   times until a subscriber of the alert topic receives ``e911.alert.resolved``
   (reason ``location_updated``);
2. writes the reverse change (Home → HQ) straight into the ``users`` table with SQL,
   as another system would, and times until the re-raised ``e911.alert.raised``.

The baseline is what the daemon did before PostgreSQL NOTIFY drove re-evaluation:
the change waited for the session's next scheduled check, on average half an
interval (150 s with the default 300 s interval) and at worst a whole one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.harness import daemon_settings, on_embedded, report, scratch_database, until
from e911d.daemon.commands.dev import cloud_event
from e911d.daemon.runtime.app import App

HOME_IP = "198.51.100.7"


@dataclass(frozen=True)
class Latencies:
    scenario: str
    seconds: tuple[float, ...]

    def row(self) -> str:
        s = sorted(self.seconds)
        p90 = s[min(len(s) - 1, int(0.9 * len(s)))]
        return (
            f"| {self.scenario} | {len(s)} | {statistics.median(s) * 1000:.0f} | "
            f"{p90 * 1000:.0f} | {max(s) * 1000:.0f} | {min(s) * 1000:.0f} |"
        )


def _directory() -> list[bytes]:
    events = [
        cloud_event("e911.account.upserted", {"account_id": "acme", "e911_recommendations": True})
    ]
    for lid, name, net in (("hq", "HQ", "203.0.113.0/24"), ("home", "Home", "198.51.100.0/24")):
        address = {"street": "1 Main St", "city": "Springfield", "country": "US"}
        events.append(
            cloud_event(
                "e911.location.upserted",
                {"account_id": "acme", "location_id": lid, "name": name, "address": address},
            )
        )
        events.append(
            cloud_event(
                "e911.ip_group.upserted",
                {
                    "account_id": "acme",
                    "ip_group_id": f"{lid}-net",
                    "name": name,
                    "location_id": lid,
                    "addresses": [net],
                },
            )
        )
    events.append(
        cloud_event(
            "e911.user.upserted",
            {
                "account_id": "acme",
                "user_id": "u1",
                "e911_recommendations": False,
                "e911_location_id": "hq",
            },
        )
    )
    return events


class AlertTap:
    """A subscriber of the alert topic that hands over each event as it arrives."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=50
        )
        self.events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for msg in self._consumer:
            self.events.put_nowait((time.perf_counter(), json.loads(msg.value)))

    async def next_of(self, type_: str, within: float = 30) -> tuple[float, dict[str, Any]]:
        async with asyncio.timeout(within):
            while True:
                at, event = await self.events.get()
                if event["type"] == type_:
                    return at, event

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._consumer.stop()


async def run(runs: int, bootstrap: str, admin_dsn: str) -> list[Latencies]:
    async with scratch_database(admin_dsn) as dsn:
        return await _measure(runs, bootstrap, dsn)


async def _measure(runs: int, bootstrap: str, dsn: str) -> list[Latencies]:
    prefix = f"react{uuid.uuid4().hex[:6]}"
    settings = daemon_settings(
        bootstrap,
        dsn,
        prefix,
        partitions=4,
        checks={"initial_delay_seconds": 1, "interval_seconds": 600, "tick_seconds": 0.2},
        kafka={"poll_timeout_ms": 100},
    )
    app = App(settings)
    task = asyncio.create_task(app.run())
    topics = settings.kafka.topics
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    tap = AlertTap(bootstrap, topics.alerts)
    sql = await asyncpg.connect(dsn)
    kafka_resolve: list[float] = []
    sql_raise: list[float] = []
    try:
        await until(lambda: app.ownership.loaded, 60)
        await tap.start()
        for value in _directory():
            await producer.send_and_wait(topics.directory_events, value, key=b"acme")
        login = cloud_event(
            "e911.session.login",
            {"account_id": "acme", "user_id": "u1", "session_id": "s1", "ip": HOME_IP},
        )
        await producer.send_and_wait(topics.session_events, login, key=b"u1")
        await tap.next_of("e911.alert.raised")
        for _ in range(runs):
            change = cloud_event(
                "e911.user.location_changed",
                {
                    "account_id": "acme",
                    "user_id": "u1",
                    "e911_location_id": "home",
                    "changed_via": "app",
                },
            )
            sent = time.perf_counter()
            await producer.send_and_wait(topics.directory_events, change, key=b"acme")
            at, event = await tap.next_of("e911.alert.resolved")
            assert event["data"]["reason"] == "location_updated", event
            kafka_resolve.append(at - sent)

            sent = time.perf_counter()
            await sql.execute(
                "UPDATE users SET e911_location_id = 'hq' WHERE account_id = 'acme'"
                " AND user_id = 'u1'"
            )
            at, event = await tap.next_of("e911.alert.raised")
            sql_raise.append(at - sent)
    finally:
        await sql.close()
        await tap.stop()
        await producer.stop()
        app.request_stop()
        await task
    return [
        Latencies(
            "`user.location_changed` produced → `alert.resolved` received", tuple(kafka_resolve)
        ),
        Latencies("`UPDATE users` committed by SQL → `alert.raised` received", tuple(sql_raise)),
    ]


def table(results: Sequence[Latencies]) -> str:
    head = (
        "| scenario | runs | median (ms) | p90 (ms) | max (ms) | min (ms) |\n"
        "|---|--:|--:|--:|--:|--:|"
    )
    baseline = (
        "| baseline: wait for the next scheduled check (interval 300 s) | — | 150,000 (mean) "
        "| 270,000 | 300,000 | 0 |"
    )
    return "\n".join([head, *(r.row() for r in results), baseline])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reaction", description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-write-readme", action="store_true")
    args = parser.parse_args(argv)
    results, _ = on_embedded(lambda bootstrap, dsn: run(args.runs, bootstrap, dsn))
    report(
        "reaction",
        f"python -m benchmarks.reaction --runs {args.runs}",
        table(results),
        note="; the subscriber is an aiokafka consumer with `fetch_max_wait_ms=50`",
        write=not args.no_write_readme,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

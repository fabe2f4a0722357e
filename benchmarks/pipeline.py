"""End-to-end pipeline: logins in through Kafka, checks, alerts out, on the real daemon.

``python -m benchmarks.pipeline [--sessions N]`` starts the embedded broker and
PostgreSQL, then runs the daemon (in-process, production code paths) once per
candidate on a fresh database and fresh topics:

- ``batched (ours)``: ``checks.batch_size = 2000``: one transaction per chunk of due
  sessions, as configured by default;
- ``one check per transaction (baseline)``: ``checks.batch_size = 1``.

Every session logs in at the same instant, so all first checks fall due together at
``login + initial_delay``: the drain time is how long the daemon needs to check them
all, the lateness what a session waited past its due time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from benchmarks.harness import daemon_settings, on_embedded, report, scratch_database, until
from e911d.daemon.commands.dev import cloud_event
from e911d.daemon.runtime.app import App

USERS = 1_000
INITIAL_DELAY = 20.0


@dataclass(frozen=True)
class PipelineResult:
    candidate: str
    sessions: int
    ingest_s: float
    drain_s: float
    publish_s: float
    lateness_mean_s: float
    raised: int

    def row(self) -> str:
        return (
            f"| {self.candidate} | {self.sessions:,} | {self.ingest_s:.2f} | "
            f"{self.sessions / self.ingest_s:,.0f} | {self.drain_s:.2f} | "
            f"{self.sessions / self.drain_s:,.0f} | {self.publish_s:.2f} | "
            f"{self.lateness_mean_s:.2f} | {self.raised:,} |"
        )


def _directory(now: dt.datetime) -> list[bytes]:
    events = [
        cloud_event(
            "e911.account.upserted", {"account_id": "acme", "e911_recommendations": True}, now
        )
    ]
    for lid, net in (("hq", "203.0.113.0/24"), ("home", "198.51.100.0/24")):
        events.append(
            cloud_event(
                "e911.location.upserted",
                {
                    "account_id": "acme",
                    "location_id": lid,
                    "name": lid.upper(),
                    "address": {"street": "1 Main St", "city": "Springfield", "country": "US"},
                },
                now,
            )
        )
        events.append(
            cloud_event(
                "e911.ip_group.upserted",
                {
                    "account_id": "acme",
                    "ip_group_id": f"{lid}-net",
                    "name": lid,
                    "location_id": lid,
                    "addresses": [net],
                },
                now,
            )
        )
    for i in range(USERS):
        events.append(
            cloud_event(
                "e911.user.upserted",
                {
                    "account_id": "acme",
                    "user_id": f"u{i}",
                    "e911_recommendations": False,
                    "e911_location_id": "hq",
                },
                now,
            )
        )
    return events


async def _one(
    candidate: str, batch_size: int, sessions: int, bootstrap: str, admin_dsn: str
) -> PipelineResult:
    async with scratch_database(admin_dsn) as dsn:
        return await _measure(candidate, batch_size, sessions, bootstrap, dsn)


async def _measure(
    candidate: str, batch_size: int, sessions: int, bootstrap: str, dsn: str
) -> PipelineResult:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = daemon_settings(
        bootstrap,
        dsn,
        prefix,
        partitions=12,
        checks={
            "initial_delay_seconds": INITIAL_DELAY,
            "interval_seconds": 3600,
            "tick_seconds": 0.2,
            "batch_size": batch_size,
        },
    )
    app = App(settings)
    task = asyncio.create_task(app.run())
    await until(lambda: app.ownership.loaded, 60)
    topics = settings.kafka.topics
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    now = dt.datetime.now(dt.UTC)
    sent = [await producer.send(topics.directory_events, v, key=b"acme") for v in _directory(now)]
    await asyncio.gather(*sent)
    await until(
        lambda: (
            app.metrics.registry.get_sample_value(
                "e911_events_total",
                {"topic": topics.directory_events, "type": "e911.user.upserted"},
            )
            == USERS
        ),
        60,
    )
    t0 = time.monotonic()
    login_at = dt.datetime.now(dt.UTC)
    futures = []
    for i in range(sessions):
        user = f"u{i % USERS}"
        ip = "198.51.100.7" if i % 2 else "203.0.113.5"  # half mismatch, half match
        value = cloud_event(
            "e911.session.login",
            {"account_id": "acme", "user_id": user, "session_id": f"s{i}", "ip": ip},
            login_at,
        )
        futures.append(await producer.send(topics.session_events, value, key=user.encode()))
    await asyncio.gather(*futures)
    await until(lambda: len(app.schedule) >= sessions, 300)
    ingest = time.monotonic() - t0
    reg = app.metrics.registry

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        v = reg.get_sample_value(name, labels or {})
        return 0.0 if v is None else float(v)

    def checked() -> float:
        return value("e911_checks_total", {"outcome": "match"}) + value(
            "e911_checks_total", {"outcome": "mismatch"}
        )

    due_at = login_at.timestamp() + INITIAL_DELAY
    await until(lambda: checked() >= sessions, INITIAL_DELAY + 600)
    drain = time.time() - due_at
    await until(lambda: value("e911_alert_events_published_total") >= sessions // 2, 300)
    publish = time.time() - due_at
    lateness = value("e911_check_lateness_seconds_sum") / max(
        1.0, value("e911_check_lateness_seconds_count")
    )
    raised = int(value("e911_alerts_raised_total"))
    await producer.stop()
    app.request_stop()
    await task
    return PipelineResult(candidate, sessions, ingest, drain, publish, lateness, raised)


async def run(sessions: int, bootstrap: str, admin_dsn: str) -> list[PipelineResult]:
    return [
        await _one("batched (ours, batch_size=2000)", 2000, sessions, bootstrap, admin_dsn),
        await _one("one check per transaction (baseline)", 1, sessions, bootstrap, admin_dsn),
    ]


def table(results: Sequence[PipelineResult]) -> str:
    head = (
        "| candidate | sessions | ingest (s) | logins/s | drain (s) | checks/s | "
        "all alerts published (s after due) | mean lateness (s) | raised |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    return "\n".join([head, *(r.row() for r in results)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--no-write-readme", action="store_true")
    args = parser.parse_args(argv)
    results, elapsed = on_embedded(lambda bootstrap, dsn: run(args.sessions, bootstrap, dsn))
    report(
        "pipeline",
        f"python -m benchmarks.pipeline --sessions {args.sessions}",
        table(results),
        elapsed=elapsed,
        write=not args.no_write_readme,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

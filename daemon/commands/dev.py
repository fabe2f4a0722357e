"""``e911d dev``: the whole product on one machine, with nothing to set up.

Starts the embedded broker and PostgreSQL, loads the demo directory through the
directory topic (the same path production uses), runs the daemon with short
intervals, drives simulated users between office and home, and prints alerts as they
happen. Ctrl-C stops everything and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import sys
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from e911d.config import Settings, load_settings
from e911d.consumers.envelope import encode_event
from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedError, EmbeddedPostgres
from e911d.daemon.runtime.app import App
from e911d.daemon.runtime.collector import tune_collector
from e911d.daemon.runtime.logs import configure_logging
from e911d.daemon.runtime.stop_signals import capture_signals

DEV_SOURCE = "urn:e911d:dev"


@dataclass(frozen=True, slots=True)
class DevOptions:
    initial_delay: float = 10.0
    interval: float = 5.0
    duration: float | None = None
    http_port: int = 9911
    seed: int = 911


def demo_directory() -> dict[str, Any]:
    text = (
        resources.files("e911d.daemon.commands")
        .joinpath("demo", "directory.json")
        .read_text("utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def cloud_event(type_: str, data: dict[str, Any], when: dt.datetime | None = None) -> bytes:
    """An event as a producer of the inbound topics would send it (dev mode, benchmarks)."""
    return encode_event(
        type_=type_,
        event_id=str(uuid.uuid4()),
        source=DEV_SOURCE,
        time=when or dt.datetime.now(dt.UTC),
        data=data,
    )


def directory_events(directory: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The demo directory as (key, CloudEvent) pairs for the directory topic."""
    out: list[tuple[str, bytes]] = []
    for acct in directory["accounts"]:
        aid = acct["account_id"]
        out.append(
            (
                aid,
                cloud_event(
                    "e911.account.upserted",
                    {"account_id": aid, "e911_recommendations": acct["e911_recommendations"]},
                ),
            )
        )
        for loc in acct["locations"]:
            out.append((aid, cloud_event("e911.location.upserted", {"account_id": aid, **loc})))
        for grp in acct["ip_groups"]:
            out.append((aid, cloud_event("e911.ip_group.upserted", {"account_id": aid, **grp})))
        for user in acct["users"]:
            data = {k: v for k, v in user.items() if k != "places"}
            out.append((aid, cloud_event("e911.user.upserted", {"account_id": aid, **data})))
    return out


class Simulator:
    """Simulated people: log in at a place, move between places, log out."""

    def __init__(self, directory: dict[str, Any], seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311  a simulation, not security
        self.people = [
            (acct["account_id"], user) for acct in directory["accounts"] for user in acct["users"]
        ]
        self.sessions: dict[str, tuple[str, str, str]] = {}  # user_id -> (session, place, ip)

    def step(self) -> list[tuple[str, bytes, str]]:
        """One simulated action: (key, event, human description)."""
        account_id, user = self.rng.choice(self.people)
        uid = user["user_id"]
        places: dict[str, str] = user["places"]
        current = self.sessions.get(uid)
        base = {"account_id": account_id, "user_id": uid}
        if current is None:
            place = self.rng.choice(sorted(places))
            sid = f"{uid}-{uuid.uuid4().hex[:6]}"
            self.sessions[uid] = (sid, place, places[place])
            ev = cloud_event("e911.session.login", {**base, "session_id": sid, "ip": places[place]})
            return [(uid, ev, f"{uid} logs in at {place} ({places[place]})")]
        sid, place, _ = current
        if self.rng.random() < 0.25:
            del self.sessions[uid]
            ev = cloud_event("e911.session.logout", {**base, "session_id": sid})
            return [(uid, ev, f"{uid} logs out")]
        choices = [p for p in sorted(places) if p != place] or [place]
        new_place = self.rng.choice(choices)
        self.sessions[uid] = (sid, new_place, places[new_place])
        ev = cloud_event(
            "e911.session.ip_changed", {**base, "session_id": sid, "ip": places[new_place]}
        )
        return [(uid, ev, f"{uid} moves to {new_place} ({places[new_place]})")]


def describe_alert(event: dict[str, Any]) -> str:
    data = event.get("data", {})
    if event.get("type") == "e911.alert.raised":
        assigned = data.get("assigned_location") or {}
        rec = data.get("recommendation", {})
        names = ", ".join(loc["name"] for loc in rec.get("locations", []))
        return (
            f"ALERT RAISED    {data.get('user_id')} at {data.get('ip')}: assigned "
            f"'{assigned.get('name', 'none')}', recommend [{names}] ({rec.get('kind')})"
        )
    return f"ALERT RESOLVED  {data.get('user_id')}: {data.get('reason')}"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A recommendation a simulated user may accept in the app."""

    account_id: str
    user_id: str
    location_id: str
    name: str
    # The session the alert was shown on: the app says it made the change from there.
    session_id: str | None = None


def suggestion_of(event: dict[str, Any]) -> Suggestion | None:
    data = event.get("data", {})
    rec = data.get("recommendation") or {}
    if event.get("type") != "e911.alert.raised" or rec.get("kind") != "ip_group_match":
        return None
    first = rec["locations"][0]
    return Suggestion(
        data["account_id"],
        data["user_id"],
        first["location_id"],
        first["name"],
        data.get("session_id"),
    )


async def _print_alerts(
    bootstrap: str, topic: str, out: TextIO, suggestions: asyncio.Queue[Suggestion]
) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        async for msg in consumer:
            with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                event = json.loads(msg.value)
                print(f"  {describe_alert(event)}", file=out, flush=True)
                suggestion = suggestion_of(event)
                if suggestion is not None:
                    suggestions.put_nowait(suggestion)
    finally:
        await consumer.stop()


def banner(settings: Settings, http_port: int) -> str:
    """Where to point a subscriber, a psql or a Prometheus while the demo runs: the
    addresses are picked at start (free ports, a temporary socket folder), so nobody
    could guess them. The embedded database trusts local connections and has no
    password, so its DSN is printed whole, ready to paste."""
    topics = settings.kafka.topics
    return (
        "e911d dev: running; connect to\n"
        f"  broker    {settings.kafka.bootstrap_servers}  (alerts on {topics.alerts}; "
        f"send to {topics.session_events}, {topics.directory_events})\n"
        f"  database  {settings.postgres.dsn.get_secret_value()}\n"
        f"  metrics   http://{settings.http.host}:{http_port}/metrics"
    )


async def _dev(options: DevOptions, bootstrap: str, dsn: str, out: TextIO) -> int:
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {"bootstrap_servers": bootstrap, "topic_partitions": 3},
            "postgres": {"dsn": dsn},
            "checks": {
                "initial_delay_seconds": options.initial_delay,
                "interval_seconds": options.interval,
                "tick_seconds": 0.5,
                "sweep_interval_seconds": 10,
            },
            "http": {"host": "127.0.0.1", "port": options.http_port},
            "log": {"format": "console", "level": "warning"},
        },
    )
    app = App(settings)
    with capture_signals(app.request_stop):
        return await _drive(app, settings, options, bootstrap, out)


async def _drive(
    app: App, settings: Settings, options: DevOptions, bootstrap: str, out: TextIO
) -> int:
    loop = asyncio.get_running_loop()
    app_task = asyncio.create_task(app.run(), name="e911d-app")
    started = asyncio.create_task(app.started.wait())
    await asyncio.wait({app_task, started}, return_when=asyncio.FIRST_COMPLETED)
    if app_task.done():
        started.cancel()
        return app_task.result()
    directory = demo_directory()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    suggestions: asyncio.Queue[Suggestion] = asyncio.Queue()
    printer = asyncio.create_task(
        _print_alerts(bootstrap, settings.kafka.topics.alerts, out, suggestions)
    )
    try:
        for key, value in directory_events(directory):
            await producer.send_and_wait(
                settings.kafka.topics.directory_events, value, key=key.encode()
            )
        port = app.http.port if app.http else options.http_port
        print(banner(settings, port), file=out, flush=True)
        print(
            f"  demo directory loaded: {len(directory['accounts'])} accounts; checks "
            f"{options.initial_delay:g}s after login, then every {options.interval:g}s. "
            "Ctrl-C stops.",
            file=out,
            flush=True,
        )
        sim = Simulator(directory, options.seed)
        # Everyone logs in first, so alerts appear within a minute, then the churn.
        for _ in range(len(sim.people) * 2):
            if len(sim.sessions) == len(sim.people):
                break
            for key, value, text in sim.step():
                if text.endswith("logs out"):
                    continue
                await producer.send_and_wait(
                    settings.kafka.topics.session_events, value, key=key.encode()
                )
                print(f"  {text}", file=out, flush=True)
        deadline = None if options.duration is None else loop.time() + options.duration
        while not app_task.done():
            if deadline is not None and loop.time() >= deadline:
                app.request_stop()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(app_task), 3.0)
                break
            if not suggestions.empty() and sim.rng.random() < 0.4:
                # Someone fixes their E911 location in the app: resolved at once.
                s = suggestions.get_nowait()
                fix = cloud_event(
                    "e911.user.location_changed",
                    {
                        "account_id": s.account_id,
                        "user_id": s.user_id,
                        "e911_location_id": s.location_id,
                        "changed_via": "app",
                        "session_id": s.session_id,
                    },
                )
                await producer.send_and_wait(
                    settings.kafka.topics.directory_events, fix, key=s.account_id.encode()
                )
                print(f"  {s.user_id} accepts the recommendation: {s.name}", file=out, flush=True)
                continue
            for key, value, text in sim.step():
                await producer.send_and_wait(
                    settings.kafka.topics.session_events, value, key=key.encode()
                )
                print(f"  {text}", file=out, flush=True)
        code = await app_task
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await printer
        await producer.stop()
        if not app_task.done():
            app.request_stop()
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # A second Ctrl-C: the daemon runs in its own task, so it is told too.
                app_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app_task
    return code


def run_dev(options: DevOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    configure_logging("console", "warning")
    broker = EmbeddedBroker()
    pg = EmbeddedPostgres()
    try:
        print("e911d dev: starting embedded broker and PostgreSQL ...", file=out, flush=True)
        broker.start()
        pg.start()
        tune_collector()
        return asyncio.run(_dev(options, broker.bootstrap_servers, pg.dsn, out))
    except EmbeddedError as exc:
        print(f"e911d dev: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    finally:
        broker.stop()
        pg.stop()
        print("e911d dev: stopped", file=out, flush=True)

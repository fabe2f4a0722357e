"""The million-session workload and the probes ``benchmarks.million`` reads the daemon
with: events as a producer would send them, /metrics scrapes, CPU and memory from /proc.

Kept apart from the orchestration so that each file says one thing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.soak.growth import bucket_delta, quantile
from e911d.consumers.envelope import encode_event

ACCOUNTS = 100
LOCATIONS = 50  # per account
MISMATCHED = 0.30
SOURCE = "urn:e911d:bench"


def _event(type_: str, data: dict[str, object], when: dt.datetime) -> bytes:
    return encode_event(
        type_=type_, event_id=str(uuid.uuid4()), source=SOURCE, time=when, data=data
    )


def _network(account: int, location: int) -> str:
    # Documentation-free private ranges: these are payload strings, never addresses
    # anything connects to.
    return f"10.{account}.{location}.0/24"


def directory_events(users: int, now: dt.datetime) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of accounts, their locations and IP groups, then the users
    (spread evenly over the accounts, each assigned one location)."""
    for a in range(ACCOUNTS):
        aid = f"a{a}"
        yield (
            aid.encode(),
            _event("e911.account.upserted", {"account_id": aid, "e911_recommendations": True}, now),
        )
        for loc in range(LOCATIONS):
            lid = f"l{loc}"
            address = {"street": f"{loc} Main St", "city": "Springfield", "country": "US"}
            yield (
                aid.encode(),
                _event(
                    "e911.location.upserted",
                    {"account_id": aid, "location_id": lid, "name": lid, "address": address},
                    now,
                ),
            )
            yield (
                aid.encode(),
                _event(
                    "e911.ip_group.upserted",
                    {
                        "account_id": aid,
                        "ip_group_id": f"g{loc}",
                        "name": lid,
                        "location_id": lid,
                        "addresses": [_network(a, loc)],
                    },
                    now,
                ),
            )
    for u in range(users):
        aid = f"a{u % ACCOUNTS}"
        yield (
            aid.encode(),
            _event(
                "e911.user.upserted",
                {
                    "account_id": aid,
                    "user_id": f"u{u}",
                    "e911_recommendations": True,
                    "e911_location_id": f"l{u % LOCATIONS}",
                },
                now,
            ),
        )


def directory_size(users: int) -> int:
    return ACCOUNTS * (1 + 2 * LOCATIONS) + users


def login_events(
    sessions: int, users: int, start: dt.datetime, spread_s: float
) -> Iterator[tuple[bytes, bytes]]:
    """Session ``j`` of user ``j % users`` logs in at ``start + spread * j / N``, on its
    assigned location's network, or (30 %) on the next location's."""
    step = spread_s / max(1, sessions)
    for j in range(sessions):
        u = j % users
        a, loc = u % ACCOUNTS, u % LOCATIONS
        if (j * 7919) % 100 < MISMATCHED * 100:
            loc = (loc + 1) % LOCATIONS
        ip = f"10.{a}.{loc}.{1 + j % 250}"
        user = f"u{u}"
        yield (
            user.encode(),
            _event(
                "e911.session.login",
                {"account_id": f"a{a}", "user_id": user, "session_id": f"s{j}", "ip": ip},
                start + dt.timedelta(seconds=step * j),
            ),
        )


async def produce(
    bootstrap: str, topic: str, events: Iterator[tuple[bytes, bytes]]
) -> tuple[int, float]:
    """Send everything, acknowledged; returns (count, seconds) — the producer's rate."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.monotonic()
    n = 0
    try:
        pending = []
        for key, value in events:
            pending.append(await producer.send(topic, value, key=key))
            n += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        elapsed = time.monotonic() - started
        await producer.stop()
    return n, elapsed


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float
    samples: dict[str, float]

    def get(self, name: str) -> float:
        return self.samples.get(name, 0.0)

    def checks(self) -> float:
        return sum(v for k, v in self.samples.items() if k.startswith("e911_checks_total{"))

    def lateness_buckets(self) -> list[tuple[float, float]]:
        out = []
        for k, v in self.samples.items():
            if k.startswith("e911_check_lateness_seconds_bucket{"):
                le = k.split('le="', 1)[1].split('"', 1)[0]
                out.append((float("inf") if le == "+Inf" else float(le), v))
        return sorted(out)


def scrape(port: int) -> Scrape:
    """The daemon's /metrics as ``{"name{labels}": value}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return Scrape(time.monotonic(), samples)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def lateness_p99(before: Scrape, after: Scrape) -> tuple[float, float, float] | None:
    """The 99th percentile of check lateness between two scrapes, and the bounds of the
    bucket that holds it: ``(p99, lower, upper)``; None when nothing was observed.

    Interpolated linearly within that bucket, as PromQL's ``histogram_quantile`` does
    (rank 0.99 x count; the bucket whose cumulative count first reaches it; the value
    its share of that bucket's observations places between the bucket's bounds). An
    estimate good to the bucket's width: the bounds say how good.
    """
    deltas = sorted(bucket_delta(after.lateness_buckets(), before.lateness_buckets()))
    p99 = quantile(0.99, deltas)
    if p99 is None:
        return None
    rank, lower = 0.99 * deltas[-1][1], 0.0
    for le, count in deltas:
        if count >= rank:
            return p99, lower, le
        lower = le
    return p99, lower, float("inf")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU of a process (and of its reaped children: the PostgreSQL
    backends that have exited are accounted to the postmaster)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

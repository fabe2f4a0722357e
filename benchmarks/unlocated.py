"""The cost of the record of networks nobody configured on the check path: the day's
bookkeeping in memory, and the tick's test of each session it decides from memory.

``python -m benchmarks.unlocated [--sessions 1000000]`` measures, with ``tracemalloc``,
:class:`~e911d.daemon.core.unlocated.UnlocatedToday` holding ``--sessions`` unlocated
sessions recorded today, each on its own /24 (the worst case: every session a home
worker on a network of their own), and once carried to the next day; and the time of
``sid in due`` for ``--sessions`` ids (the tick's test before deciding from memory),
against the same loop on an empty set: for sessions in the set (just after midnight:
each of them then goes to the database once and leaves the set) and for sessions not
in it (the rest of the day, when the set holds only yesterday's sessions that ended).
The ids are the schedule's own strings, as on the tick path, so they are not counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import time
import tracemalloc

from e911d.daemon.core.network_key import network_key
from e911d.daemon.core.unlocated import Sighting, UnlocatedToday

CHUNK = 2_000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unlocated")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    n = parser.parse_args().sessions
    sids = [f"session-{i:07d}" for i in range(n)]
    others = [f"other-{i:07d}" for i in range(n)]
    for s in others:
        hash(s)  # the schedule's strings have their hash cached
    ips = [ipaddress.ip_address(0x0A000000 + i * 256) for i in range(n)]
    now = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    tracemalloc.start()
    today = UnlocatedToday()
    for i in range(0, n, CHUNK):
        chunk = zip(sids[i : i + CHUNK], ips[i : i + CHUNK], strict=True)
        sightings = [Sighting(s, "acme", "u1", network_key(ip, None)) for s, ip in chunk]
        today.claim(sids[i : i + CHUNK], sightings, now)
    recorded, _ = tracemalloc.get_traced_memory()
    today.roll(now + dt.timedelta(days=1))
    carried, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    due, empty = today.due, frozenset[str]()
    started = time.perf_counter()
    hits = sum(1 for s in sids if s in due)
    with_due = time.perf_counter() - started
    started = time.perf_counter()
    misses = sum(1 for s in others if s in due)
    without_due = time.perf_counter() - started
    started = time.perf_counter()
    sum(1 for s in sids if s in empty)
    baseline = time.perf_counter() - started
    assert (hits, misses) == (n, 0)  # every session carried is due, no other
    print(f"{n:,} unlocated sessions recorded today: {recorded / 2**20:.0f} MiB")
    print(f"carried to the next day (the due set): {carried / 2**20:.0f} MiB")
    print(
        f"sid in due for {n:,} sessions in it: {(with_due - baseline) * 1000:.0f} ms, "
        f"not in it: {(without_due - baseline) * 1000:.0f} ms, more than on an empty set "
        f"({baseline * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()

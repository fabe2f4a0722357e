"""Alert ids are deterministic for (session, login time, episode, fingerprint)
(docs/spec.md#alerts-topic).

A subscriber drops a redelivered event by its CloudEvents id, so the id must come out
the same in every process that decides the same alert: no randomness, no salted hash.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
import zoneinfo

from e911d.daemon.store.alerts import alert_id_for, resolved_event_id

LOGIN = dt.datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=dt.UTC)
ARGS = ("s1", LOGIN, 1, "hq|home")

SCRIPT = """
import datetime as dt
from e911d.daemon.store.alerts import alert_id_for, resolved_event_id
login = dt.datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=dt.UTC)
a = alert_id_for("s1", login, 1, "hq|home")
print(a, resolved_event_id(a))
"""


def test_same_inputs_give_the_same_id() -> None:
    first = alert_id_for(*ARGS)
    assert alert_id_for(*ARGS) == first
    assert uuid.UUID(first).version == 5  # name-based, not random


def test_every_input_is_part_of_the_id() -> None:
    ids = {
        alert_id_for(*ARGS),
        alert_id_for("s2", LOGIN, 1, "hq|home"),
        alert_id_for("s1", LOGIN + dt.timedelta(microseconds=1), 1, "hq|home"),
        alert_id_for("s1", LOGIN, 2, "hq|home"),
        alert_id_for("s1", LOGIN, 1, "hq|lab"),
    }
    assert len(ids) == 5


def test_the_login_instant_decides_not_the_offset_it_is_written_with() -> None:
    for zone in ("Asia/Kolkata", "America/Chicago"):
        local = LOGIN.astimezone(zoneinfo.ZoneInfo(zone))
        assert alert_id_for("s1", local, 1, "hq|home") == alert_id_for(*ARGS)


def test_the_resolved_event_id_is_deterministic_and_differs_from_the_alert_id() -> None:
    a = alert_id_for(*ARGS)
    assert resolved_event_id(a) == resolved_event_id(a)
    assert resolved_event_id(a) != a


def test_another_process_with_another_hash_seed_or_zone_computes_the_same_ids() -> None:
    ids: set[str] = set()
    for seed, zone in (("1", "UTC"), ("2", "America/Chicago"), ("3", "Asia/Kolkata")):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": seed, "TZ": zone},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        ids.add(out.strip())
    a = alert_id_for(*ARGS)
    assert ids == {f"{a} {resolved_event_id(a)}"}

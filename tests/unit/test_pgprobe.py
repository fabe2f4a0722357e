"""benchmarks/pgprobe.py: PostgreSQL's CPU summed over the cluster's processes, by
kind, with the time of children that have exited (reaped) still counted."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.pgprobe import Snapshot, delta, process_cpu

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"


def test_a_childs_cpu_counts_while_it_runs_and_after_it_is_reaped():
    """The probe's parent stands in for the postmaster: a child that burns 0.3 s of CPU
    is counted as a backend while alive, and in the parent's reaped time once waited
    for, so a backend that exits within a window is not lost from the sum. Other
    children of this process (a test worker's broker or PostgreSQL) count too, so the
    figures are compared with those before the child started."""
    me = os.getpid()
    before = process_cpu(me)
    others = before.get("client backends", 0.0)
    child = subprocess.Popen(
        [sys.executable, "-c", BURN + "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        while process_cpu(me).get("client backends", 0.0) - others < 0.25:
            assert child.poll() is None
        alive = process_cpu(me)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    after = process_cpu(me)
    assert alive["client backends"] - others >= 0.25
    # The child left the living: what is left is the others' (which only grow).
    assert after.get("client backends", 0.0) <= alive["client backends"] - 0.2
    reaped = after["exited processes (reaped)"] - before["exited processes (reaped)"]
    assert reaped >= 0.25, (before, after)


def test_delta_subtracts_every_counter_and_keeps_kinds_seen_once():
    a = Snapshot({"WAL writer": 1.0, "gone": 0.5}, 100.0, 10.0, 50.0, {"calls": 3.0})
    b = Snapshot({"WAL writer": 1.5, "client backends": 2.0}, 900.0, 14.0, 80.0, {"calls": 9.0})
    win = delta(a, b)
    assert win.wal_bytes == 800 and win.commits == 4 and win.rows_written == 30
    # "gone" exited: its 0.5 s before the window is netted against the reaped time.
    assert win.cpu == {
        "WAL writer": 0.5,
        "client backends": 2.0,
        "gone": 0.0,
        "exited processes (reaped)": -0.5,
    }
    assert win.statements == {"calls": 6.0}
    assert win.cpu_total == 2.0
    exited = Snapshot({"exited processes (reaped)": 3.0, "autovacuum": 0.5}, 0, 0, 0)
    later = Snapshot({"exited processes (reaped)": 3.75}, 0, 0, 0)
    assert delta(exited, later).cpu == {"autovacuum": 0.0, "exited processes (reaped)": 0.25}

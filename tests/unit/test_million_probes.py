"""The arithmetic benchmarks.million reports with: the lateness p99 read between two
scrapes of the histogram, several instances' scrapes summed, and the command line."""

from __future__ import annotations

import math

from benchmarks.daemons import merged
from benchmarks.million import BASELINE_REF, command, parse
from benchmarks.workload import Scrape, lateness_p99


def _scrape(at: float, buckets: dict[str, float], **other: float) -> Scrape:
    samples = {f'e911_check_lateness_seconds_bucket{{le="{le}"}}': v for le, v in buckets.items()}
    samples.update(other)
    return Scrape(at, samples)


def test_p99_is_interpolated_within_its_bucket_between_the_two_scrapes():
    """Only what was observed between the scrapes counts: 1,000 earlier checks all 200 s
    late must not move it. Of the 1,000 in the window, 980 ran within 1 s and 20 between
    1 and 1.5 s: rank 990 is half-way through the (1, 1.5] bucket, 1.25 s."""
    before = _scrape(0, {"1.0": 0, "1.5": 0, "2.0": 0, "300.0": 1000, "+Inf": 1000})
    after = _scrape(60, {"1.0": 980, "1.5": 1000, "2.0": 1000, "300.0": 2000, "+Inf": 2000})
    got = lateness_p99(before, after)
    assert got is not None
    p99, lower, upper = got
    assert math.isclose(p99, 1.25)
    assert (lower, upper) == (1.0, 1.5)


def test_p99_in_the_last_bucket_reads_as_its_lower_bound_and_none_when_nothing_ran():
    before = _scrape(0, {"1.0": 0, "300.0": 0, "+Inf": 0})
    late = _scrape(60, {"1.0": 0, "300.0": 0, "+Inf": 50})
    got = lateness_p99(before, late)
    assert got is not None
    assert got[0] == 300.0 and got[2] == math.inf
    assert lateness_p99(before, before) is None


def test_instances_are_summed_into_one_scrape():
    a = _scrape(1, {"1.0": 3, "+Inf": 4}, e911_sessions_active=10)
    b = _scrape(2, {"1.0": 5, "+Inf": 5}, e911_sessions_active=7)
    both = merged([a, b])
    assert both.get("e911_sessions_active") == 17
    assert both.lateness_buckets() == [(1.0, 8), (math.inf, 9)]
    assert both.at == 2


def test_the_baseline_is_todays_main_and_the_command_says_what_ran():
    assert BASELINE_REF == "bd7d41c"
    args = parse(["--sessions", "100000", "--instances", "3"])
    assert args.baseline_ref == BASELINE_REF and args.users == 25_000
    assert command(args) == (
        "python -m benchmarks.million --sessions 100000 --designs new,baseline --instances 3"
    )
    other = parse(["--baseline-ref", "e3ddfcb", "--designs", "baseline"])
    assert "--baseline-ref e3ddfcb" in command(other)
    # What changes the workload is in the command, so that the table can be rerun.
    paced = parse(["--sessions", "1000", "--designs", "new", "--interval", "20"])
    assert (
        command(paced) == "python -m benchmarks.million --sessions 1000 --designs new --interval 20"
    )
    every = parse(
        [
            *("--users", "7", "--initial-delay", "30.5", "--steady-seconds", "5"),
            *("--restart-within", "40", "--interval", "30"),
        ]
    )
    assert command(every).endswith(
        "--users 7 --initial-delay 30.5 --steady-seconds 5 --restart-within 40"
    )

"""The soak's growth rule (benchmarks/soak/growth.py) and its histogram arithmetic."""

from __future__ import annotations

import pytest

from benchmarks.soak.growth import (
    BOUNDS,
    MIN_SAMPLES,
    Bound,
    bucket_delta,
    failed,
    judge,
    judge_all,
    quantile,
)

RSS = next(b for b in BOUNDS if b.name == "rss_mib")


def test_a_leak_of_a_quarter_mebibyte_a_minute_is_caught_in_thirty_minutes():
    leak = [60 + 0.25 * m for m in range(30)]
    verdict = judge(leak, RSS)
    assert verdict.judged and verdict.grows, verdict.describe()


def test_a_flat_series_with_noise_and_one_spike_is_bounded():
    noisy = [60 + (0.8 if m % 3 == 0 else -0.8) for m in range(30)]
    noisy[25] = 140  # one bad minute (a collection, a busy neighbour) does not decide
    assert not judge(noisy, RSS).grows


def test_warm_up_is_not_judged():
    """A series that rises while the population ramps up, then holds, is bounded."""
    ramp = [20, 40, 60, 75, 80, 80, 81, 80, 80, 81, 80, 80]
    assert not judge(ramp, RSS).grows


def test_growth_within_the_absolute_margin_passes_and_past_it_fails():
    fds = Bound("open_fds", absolute=3.0)
    assert not judge([15] * 4 + [15, 15, 15, 18, 18, 18], fds).grows
    assert judge([15] * 4 + [15, 15, 15, 19, 19, 19], fds).grows


def test_a_short_run_is_not_judged_and_does_not_fail():
    verdicts = judge_all({"tasks": [1, 2, 3, 4, 5]})
    assert [v.judged for v in verdicts] == [False]
    assert not failed(verdicts)
    assert "not judged" in verdicts[0].describe()


def test_minutes_without_a_sample_are_left_out():
    """No check ran in a minute: its lateness is None, not zero."""
    late = Bound("lateness_p99_s", absolute=1.0, relative=0.5)
    series: list[float | None] = [None, 0.5, 0.5, None, 0.6, 0.5, 0.5, 0.5, 9.0, 9.0, 9.0]
    assert judge(series, late).grows
    assert not judge([None] * (MIN_SAMPLES + 3), late).judged


def test_judge_all_follows_the_bounds_and_fails_when_one_grows():
    columns = {b.name: [1.0] * 12 for b in BOUNDS}
    columns["tasks"] = [20.0] * 8 + [30.0] * 4
    verdicts = judge_all(columns)
    assert [v.name for v in verdicts] == [b.name for b in BOUNDS]
    assert failed(verdicts)
    assert [v.name for v in verdicts if v.grows] == ["tasks"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 0.5), (0.99, 0.99), (0.25, 0.25)],
)
def test_quantile_interpolates_within_a_bucket(q, expected):
    # 100 observations spread evenly over (0, 1]: cumulative counts at 0.5 and 1.
    buckets = [(0.5, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(q, buckets) == pytest.approx(expected)


def test_quantile_of_an_empty_histogram_is_none_and_inf_reads_as_the_top_bound():
    assert quantile(0.99, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(0.1, 1.0), (300.0, 1.0), (float("inf"), 10.0)]) == 300.0


def test_bucket_delta_is_what_was_observed_between_two_scrapes():
    before = [(0.1, 10.0), (1.0, 12.0), (float("inf"), 12.0)]
    now = [(0.1, 10.0), (1.0, 22.0), (float("inf"), 23.0)]
    assert bucket_delta(now, before) == [(0.1, 0.0), (1.0, 10.0), (float("inf"), 11.0)]
    assert quantile(0.5, bucket_delta(now, before)) == pytest.approx(0.1 + 0.9 * 5.5 / 10)

"""The soak's verdict: does a series grow without bound? Pure, so it is unit-tested.

A finite run cannot prove that a series is bounded; it can catch one that keeps
rising while the load stays the same. The rule, per series:

1. The first third of the minutes is warm-up (pools fill, caches fill, the session
   population ramps up to its steady level) and is not judged.
2. The rest is cut in two halves, "middle" and "last". The series grows when the
   median of the last half exceeds the median of the middle half by more than its
   margin: ``max(absolute, relative * median(middle))``.

Medians, not means or a fit, so that one slow minute on a shared machine (a lateness
spike, a garbage collection) does not decide. With 30 minutes the halves' centres are
10 minutes apart: RSS, allowed to rise 2 MiB or 2 % (the daemon holds about 60 MiB
under the soak's load), fails on a leak of 0.25 MiB a minute, 2.5 GiB a week. A run
shorter than :data:`MIN_SAMPLES` minutes is reported as not judged.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SAMPLES = 6


@dataclass(frozen=True, slots=True)
class Bound:
    """How much a series may rise between the middle and the last part of a run."""

    name: str
    absolute: float
    relative: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    judged: bool
    grows: bool
    middle: float | None = None
    last: float | None = None
    margin: float | None = None

    def describe(self) -> str:
        if not self.judged:
            return f"{self.name}: not judged (fewer than {MIN_SAMPLES} samples)"
        word = "GROWS" if self.grows else "bounded"
        return (
            f"{self.name}: {word} (median middle {self.middle:.3g}, last {self.last:.3g}, "
            f"allowed rise {self.margin:.3g})"
        )


# The series the soak reports, with their margins (docs: benchmarks/README.md, soak).
BOUNDS = (
    Bound("rss_mib", absolute=2.0, relative=0.02),
    Bound("open_fds", absolute=3.0),
    Bound("tasks", absolute=5.0),
    Bound("lateness_p99_s", absolute=1.0, relative=0.5),
    Bound("outbox_age_s", absolute=2.0, relative=0.5),
)


def judge(values: Sequence[float | None], bound: Bound) -> Verdict:
    """Judge one series of per-minute samples (None: no sample that minute)."""
    series = [v for v in values if v is not None]
    if len(series) < MIN_SAMPLES:
        return Verdict(bound.name, judged=False, grows=False)
    rest = series[len(series) // 3 :]
    half = len(rest) // 2
    middle = statistics.median(rest[:half])
    last = statistics.median(rest[half:])
    margin = max(bound.absolute, bound.relative * abs(middle))
    return Verdict(bound.name, True, last - middle > margin, middle, last, margin)


def judge_all(columns: dict[str, Sequence[float | None]]) -> list[Verdict]:
    """Every bounded series that ``columns`` holds, in the order of :data:`BOUNDS`."""
    return [judge(columns[b.name], b) for b in BOUNDS if b.name in columns]


def failed(verdicts: Sequence[Verdict]) -> bool:
    return any(v.grows for v in verdicts)


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of a Prometheus histogram's cumulative ``(le, count)`` buckets,
    interpolated within a bucket as ``histogram_quantile`` does; None when empty.

    An observation in the +Inf bucket reads as the highest finite bound.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def bucket_delta(
    now: Sequence[tuple[float, float]], before: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The buckets of what was observed between two scrapes of a cumulative histogram."""
    old = dict(before)
    return [(le, count - old.get(le, 0.0)) for le, count in now]

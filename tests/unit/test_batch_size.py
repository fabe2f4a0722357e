"""The poll's record limit: grows while stores are fast, halves when one is slow,
never leaves its bounds, and stays put when adaptation is off."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from e911d.consumers.batch_size import BatchSizer, BatchSizing


def test_starts_between_the_bounds() -> None:
    assert BatchSizer(BatchSizing(100, 10_000, 0.5)).size == 1_000


def test_full_fast_batches_grow_it_up_to_the_max() -> None:
    sizer = BatchSizer(BatchSizing(100, 10_000, 0.5))
    sizes = [sizer.observe(sizer.size, 0.1) for _ in range(30)]
    assert sizes[0] == 1_250
    assert sizes == sorted(sizes)
    assert sizes[-1] == 10_000


def test_a_short_batch_does_not_grow_it() -> None:
    # Fewer records than asked for: the topic ran dry, the database is not the limit.
    sizer = BatchSizer(BatchSizing(100, 10_000, 0.5))
    assert sizer.observe(10, 0.01) == 1_000


def test_a_slow_store_halves_it_down_to_the_min() -> None:
    sizer = BatchSizer(BatchSizing(100, 10_000, 0.5))
    assert sizer.observe(1_000, 0.6) == 500
    assert [sizer.observe(1, 2.0) for _ in range(4)] == [250, 125, 100, 100]


def test_at_the_target_it_still_grows() -> None:
    sizer = BatchSizer(BatchSizing(100, 10_000, 0.5))
    assert sizer.observe(1_000, 0.5) == 1_250


def test_small_sizes_still_grow_by_at_least_one() -> None:
    sizer = BatchSizer(BatchSizing(1, 4, 1.0))
    assert sizer.size == 2
    assert [sizer.observe(sizer.size, 0.0) for _ in range(3)] == [3, 4, 4]


def test_target_zero_keeps_the_max() -> None:
    sizer = BatchSizer(BatchSizing(100, 5_000, 0.0))
    assert sizer.size == 5_000
    assert sizer.observe(5_000, 60.0) == 5_000
    assert sizer.observe(1, 0.0) == 5_000


@pytest.mark.parametrize(("lo", "hi", "target"), [(0, 10, 1.0), (11, 10, 1.0), (1, 10, -1.0)])
def test_bad_bounds_are_refused(lo: int, hi: int, target: float) -> None:
    with pytest.raises(ValueError):
        BatchSizing(lo, hi, target)


@given(
    lo=st.integers(1, 1_000),
    span=st.integers(0, 50_000),
    target=st.floats(0.01, 5.0),
    steps=st.lists(st.tuples(st.integers(0, 100_000), st.floats(0.0, 10.0)), max_size=60),
)
def test_never_leaves_its_bounds(
    lo: int, span: int, target: float, steps: list[tuple[int, float]]
) -> None:
    sizer = BatchSizer(BatchSizing(lo, lo + span, target))
    assert lo <= sizer.size <= lo + span
    for records, seconds in steps:
        before = sizer.size
        size = sizer.observe(records, seconds)
        assert lo <= size <= lo + span
        if seconds > target:
            assert size <= before
        else:
            assert size >= before

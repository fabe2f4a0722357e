"""Which partitions a database lost commits of: its offsets behind what this process
stored there (a failover to a replica that had not received them)."""

from __future__ import annotations

from e911d.daemon.store.offsets import rewound


def test_behind_is_rewound_with_the_database_offset() -> None:
    assert rewound({("s", 0): 10, ("s", 1): 7}, {("s", 0): 10, ("s", 1): 9}) == {("s", 1): 7}


def test_a_missing_row_counts_as_zero() -> None:
    assert rewound({}, {("s", 2): 5}) == {("s", 2): 0}


def test_equal_or_ahead_is_not_rewound() -> None:
    # Ahead: another owner stored more (the GREATEST rule), never a loss of ours.
    assert rewound({("s", 0): 10, ("d", 0): 12}, {("s", 0): 10, ("d", 0): 11}) == {}

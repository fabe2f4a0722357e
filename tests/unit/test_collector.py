"""The daemon's collector thresholds: set by the commands that run the daemon only."""

from __future__ import annotations

import gc

import pytest

from e911d.daemon.runtime.collector import THRESHOLDS, tune_collector


@pytest.fixture
def restore_thresholds():
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_tuning_sets_the_thresholds_and_says_what_it_replaced(restore_thresholds) -> None:
    assert tune_collector() == restore_thresholds
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > restore_thresholds[0]  # fewer young collections, not more

"""``python -m benchmarks.loading`` end to end at a small size: both designs load and
drain every session (the benchmark stops on a count that differs), and the table
carries each of its figures."""

from __future__ import annotations

import pytest

from tests.e2e.cli import run_benchmark


@pytest.mark.timeout(180)
async def test_both_designs_load_and_drain_every_session_and_are_reported():
    code, text, err = await run_benchmark(
        "benchmarks.loading",
        *("--sessions", "3000", "--repeat", "1", "--no-write-readme"),
        within=170,
    )
    assert code == 0, err[-2000:]
    assert "`python -m benchmarks.loading --sessions 3000 --repeat 1`" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "(" in line]
    designs = {row.split("|")[1].strip(): row.split("|")[2:-1] for row in rows[1:]}
    assert set(designs) == {"packed arrays (ours)", "value arrays, an entry each (bd7d41c)"}
    for cells in designs.values():
        assert len(cells) == 6 and all(float(c) >= 0 for c in cells)

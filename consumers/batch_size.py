"""How many records the next poll asks for: adapted to how long batches take to store.

A batch is one transaction, so its size trades the transaction's fixed cost (the
offsets' lock, the commit's flush) against how long the next batch waits and how much
one rewind replays. The sizer grows the batch while stores stay under a target time
and shrinks it when one exceeds it (halving, so a database that slows down is
relieved at once, and growing by a quarter, so it is approached gently), never
outside ``[min_records, max_records]``. Pure: the loop reports each store's duration
and reads the size.
"""

from __future__ import annotations

from dataclasses import dataclass

GROW = 1.25
SHRINK = 0.5


@dataclass(frozen=True, slots=True)
class BatchSizing:
    """Bounds and target; ``target_seconds`` 0 keeps every poll at ``max_records``."""

    min_records: int
    max_records: int
    target_seconds: float

    def __post_init__(self) -> None:
        if not 1 <= self.min_records <= self.max_records:
            raise ValueError(f"need 1 <= min_records <= max_records, got {self}")
        if self.target_seconds < 0:
            raise ValueError(f"target_seconds must be >= 0, got {self.target_seconds}")

    @property
    def adaptive(self) -> bool:
        return self.target_seconds > 0


class BatchSizer:
    """The next poll's record limit, from the last stores' durations."""

    def __init__(self, sizing: BatchSizing) -> None:
        self.sizing = sizing
        # Start in the middle of the range (geometrically): a few stores reach the
        # right size from either end.
        start = int((sizing.min_records * sizing.max_records) ** 0.5)
        self.size = sizing.max_records if not sizing.adaptive else start

    def observe(self, records: int, seconds: float) -> int:
        """One batch of ``records`` took ``seconds`` to store; returns the next size.

        Only a full batch (as many records as asked for) may grow the size: a short
        one says the topic ran dry, not that the database could take more.
        """
        s = self.sizing
        if not s.adaptive:
            return self.size
        if seconds > s.target_seconds:
            self.size = max(s.min_records, int(self.size * SHRINK))
        elif records >= self.size:
            self.size = min(s.max_records, max(self.size + 1, int(self.size * GROW)))
        return self.size

"""What the consumer loop hands the daemon per poll, and what the daemon may answer.

The daemon stores a batch and its next offsets in one transaction. It refuses a batch
for good (:class:`BatchRejected`: the loop finds the poison event), or finds that the
database no longer holds offsets it stored before (:class:`Rewound`: a failover lost
the last asynchronously replicated commits), and the loop then reads again from the
offsets the database does hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from e911d.consumers.topics import TP
from e911d.daemon.core.events import DirectoryEvent, SessionEvent

# (topic, partition, offset) of one event.
Position = tuple[str, int, int]


@dataclass(slots=True)
class InboundBatch:
    """Decoded events of one poll, in partition order, and the offsets to store.

    ``session_at`` and ``directory_at`` give each event's position (parallel to the
    event lists), so that a batch some of whose events another consumer has already
    stored can drop those (:meth:`after`): a consumer paused past its session timeout
    and resumed after its partitions moved must not apply them a second time, over
    what came after them.
    """

    session_events: list[tuple[int, SessionEvent]] = field(default_factory=list)
    directory_events: list[DirectoryEvent] = field(default_factory=list)
    next_offsets: dict[TP, int] = field(default_factory=dict)
    session_at: list[Position] = field(default_factory=list)
    directory_at: list[Position] = field(default_factory=list)

    def partitions(self) -> set[TP]:
        """Every topic-partition the batch has an event or an offset of."""
        at = {(t, p) for t, p, _ in self.session_at} | {(t, p) for t, p, _ in self.directory_at}
        return at | set(self.next_offsets)

    def after(self, stored: dict[TP, int]) -> tuple[InboundBatch, dict[TP, int]]:
        """The batch without the events below the stored offsets (already applied by
        whoever stored them), and how many were dropped per partition."""
        dropped: dict[TP, int] = {}

        def fresh(at: Position) -> bool:
            tp = (at[0], at[1])
            if at[2] < stored.get(tp, -1):
                dropped[tp] = dropped.get(tp, 0) + 1
                return False
            return True

        keep_s = [i for i, at in enumerate(self.session_at) if fresh(at)]
        keep_d = [i for i, at in enumerate(self.directory_at) if fresh(at)]
        if not dropped:
            return self, {}
        batch = InboundBatch(
            session_events=[self.session_events[i] for i in keep_s],
            directory_events=[self.directory_events[i] for i in keep_d],
            next_offsets=dict(self.next_offsets),
            session_at=[self.session_at[i] for i in keep_s],
            directory_at=[self.directory_at[i] for i in keep_d],
        )
        return batch, dropped


class BatchRejected(Exception):
    """Raised by ``on_batch`` when the store refuses the batch for a permanent reason."""


class Rewound(Exception):
    """Raised by ``on_batch`` when the database's offsets are behind what was stored
    before: commits were lost (a promoted replica that had not received them). The
    batch is not stored; the loop seeks to ``offsets`` and consumes from there again."""

    def __init__(self, offsets: dict[TP, int]) -> None:
        super().__init__(f"database offsets behind what was stored: {sorted(offsets.items())}")
        self.offsets = offsets


def make_batch(
    items: list[tuple[Any, SessionEvent | DirectoryEvent]], offsets: dict[TP, int]
) -> InboundBatch:
    """From (Kafka message, decoded event) pairs; the message gives the position."""
    batch = InboundBatch(next_offsets=dict(offsets))
    for msg, event in items:
        at = (msg.topic, msg.partition, msg.offset)
        if isinstance(event, SessionEvent):
            batch.session_events.append((msg.partition, event))
            batch.session_at.append(at)
        else:
            batch.directory_events.append(event)
            batch.directory_at.append(at)
    return batch

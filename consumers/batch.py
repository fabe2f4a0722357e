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


@dataclass(slots=True)
class InboundBatch:
    """Decoded events of one poll, in partition order, and the offsets to store."""

    session_events: list[tuple[int, SessionEvent]] = field(default_factory=list)
    directory_events: list[DirectoryEvent] = field(default_factory=list)
    next_offsets: dict[TP, int] = field(default_factory=dict)


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
    batch = InboundBatch(next_offsets=dict(offsets))
    for msg, event in items:
        if isinstance(event, SessionEvent):
            batch.session_events.append((msg.partition, event))
        else:
            batch.directory_events.append(event)
    return batch

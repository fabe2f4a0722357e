"""One poll's records decoded, ahead of being stored.

The loop decodes the next poll while the batch before it is being stored (the
database's round trips leave the event loop idle), so a decoded poll waits for its
turn. It remembers the loop's ``generation`` when its records were handed over: a
rebalance or a rewind after that moves the positions back (every assigned partition is
sought to the database's offsets), and such a poll is dropped, never stored, since its
records are read again from those offsets, by whoever owns them now. (The generation
is not taken when the fetch begins: records handed over after a seek start where the
seek put the position, and dropping them would skip them.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from e911d.consumers.batch import InboundBatch, make_batch
from e911d.consumers.topics import TP
from e911d.consumers.wire import decode_directory_event, decode_session_event
from e911d.daemon.core.events import DirectoryEvent, Invalid, SessionEvent

Good = list[tuple[Any, SessionEvent | DirectoryEvent]]
Dead = list[tuple[Any, Invalid]]


@dataclass(slots=True)
class DecodedPoll:
    """Decoded events (with their messages), the bad ones, and the next offsets."""

    generation: int
    records: int
    good: Good = field(default_factory=list)
    dead: Dead = field(default_factory=list)
    offsets: dict[TP, int] = field(default_factory=dict)
    batch: InboundBatch = field(default_factory=InboundBatch)


def decode_poll(
    records: dict[Any, list[Any]],
    session_topic: str,
    max_event_bytes: int,
    max_clock_skew: dt.timedelta,
    generation: int,
) -> DecodedPoll:
    """Decode every message of one ``getmany`` answer (a TopicPartition to messages)."""
    not_after = dt.datetime.now(dt.UTC) + max_clock_skew
    out = DecodedPoll(generation, sum(len(m) for m in records.values()))
    for tp, messages in records.items():
        for msg in messages:
            event: SessionEvent | DirectoryEvent | Invalid
            headers = msg.headers or ()
            if tp.topic == session_topic:
                event = decode_session_event(msg.value, max_event_bytes, not_after, headers)
            else:
                event = decode_directory_event(msg.value, max_event_bytes, headers)
            if isinstance(event, Invalid):
                out.dead.append((msg, event))
            else:
                out.good.append((msg, event))
        if messages:
            out.offsets[(tp.topic, tp.partition)] = messages[-1].offset + 1
    out.batch = make_batch(out.good, out.offsets)
    return out

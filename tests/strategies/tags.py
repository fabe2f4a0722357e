"""What a generated message is and what must happen to it: :class:`Tagged`.

Also the two topics and the size limit, which every family of messages needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from e911d.daemon.core.events import DirectoryEvent, InvalidReason, SessionEvent

SESSION: Final = "session"
DIRECTORY: Final = "directory"
MAX_EVENT_BYTES: Final = 65_536  # the daemon's default kafka.max_event_bytes

R = InvalidReason
# Kafka record headers; empty for structured mode (the only header, content-type, is
# the producer's business and changes nothing there).
Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class Good:
    """Must be decoded to exactly this event, and applied."""

    event: SessionEvent | DirectoryEvent


@dataclass(frozen=True, slots=True)
class Bad:
    """Must be dead-lettered with one of these reasons."""

    reasons: frozenset[InvalidReason]


@dataclass(frozen=True, slots=True)
class Tagged:
    topic: str  # SESSION or DIRECTORY
    key: str
    value: bytes | None
    expect: Good | Bad
    category: str  # how it was built, for failure messages and coverage
    headers: Headers = ()  # binary content mode: the ce_* attributes and content-type

    @property
    def good(self) -> bool:
        return isinstance(self.expect, Good)


def _bad(*reasons: InvalidReason) -> frozenset[InvalidReason]:
    return frozenset(reasons)

"""Which of a recommendation's locations an alert lists (docs/spec.md#alerts-topic).

An ``all_locations`` recommendation in an account of 20,000 locations would make an
event of megabytes: larger than the broker accepts, so it could never be published.
An alert therefore lists at most :attr:`ListLimit.max_locations` of them, in the
recommendation's own order (``all_locations`` by name then id, ``nearest_locations``
nearest first), and no more than :attr:`ListLimit.max_bytes` of encoded locations,
with the number there were in all. The cut applies to every kind; only
``all_locations`` and ``nearest_locations`` get that long in practice.

The cut is display only: the alert's fingerprint (and so its id) still covers every
recommended location (:meth:`daemon.core.model.Verdict.fingerprint`), so the same
mismatch is the same alert whatever the limit is set to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from e911d.daemon.core.model import Location

# A listed location's JSON beyond its three strings: the keys, quotes, colons, commas
# and braces of {"location_id":"","name":"","address_line":""}, (46 bytes), rounded up.
_OVERHEAD: Final = 48
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class ListLimit:
    """How much of a recommendation an alert lists: at most ``max_locations``
    locations, and locations of at most ``max_bytes`` of JSON (at least one location
    is always listed: a recommendation of nothing helps no one)."""

    max_locations: int = 50
    max_bytes: int = 32_768


@dataclass(frozen=True, slots=True)
class Listing:
    locations: tuple[Location, ...]
    total: int

    @property
    def truncated(self) -> bool:
        return len(self.locations) < self.total


def encoded_size(loc: Location) -> int:
    """The bytes ``loc`` takes in an alert's JSON (escapes included)."""
    return (
        len(_encode(loc.location_id))
        + len(_encode(loc.name))
        + len(_encode(loc.address_line))
        + _OVERHEAD
    )


def listing(locations: Sequence[Location], limit: ListLimit) -> Listing:
    """The first locations, in the given order, that fit ``limit``."""
    size = 0
    count = 0
    for loc in locations[: limit.max_locations]:
        size += encoded_size(loc)
        if count and size > limit.max_bytes:
            break
        count += 1
    return Listing(tuple(locations[:count]), len(locations))

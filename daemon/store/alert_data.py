"""The wire form of the alert events (docs/spec.md#alerts-topic), as typed values.

Typed, so that the JSON Schemas and the AsyncAPI document (daemon/commands/contracts.py)
are generated from the very types the events are encoded from.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from e911d.daemon.core.events import Id
from e911d.daemon.core.model import Location, MatchedBy, RecommendationKind, ResolveReason

RAISED = "e911.alert.raised"
RESOLVED = "e911.alert.resolved"

IpAddressText = Annotated[
    str, msgspec.Meta(description="The session's IP address, normalised (IPv4 or IPv6).")
]
Timestamp = Annotated[dt.datetime, msgspec.Meta(tz=True, description="RFC 3339, in UTC.")]


AddressLine = Annotated[
    str,
    msgspec.Meta(
        description="The location's dispatchable address on one line: street, building, "
        "floor, unit, city, region and postal code, country "
        "(docs/spec.md#dispatchable-addresses); fields not given are left out, and an "
        "address with none gives ''."
    ),
]
Total = Annotated[
    int, msgspec.Meta(ge=0, description="How many locations were recommended in all.")
]
Truncated = Annotated[
    bool,
    msgspec.Meta(
        description="True when `locations` lists fewer than `total`: the first ones in "
        "the recommendation's order (by name, or nearest first), up to the configured limit."
    ),
]


class LocationRef(msgspec.Struct, frozen=True):
    """A location as an alert names it, with its address ready to show."""

    location_id: Id
    name: str
    address_line: AddressLine


class RecommendationData(msgspec.Struct, frozen=True):
    """Where the session may be: by IP group, or (nothing located it) every location.

    ``locations`` lists at most a configured number of them (an account may have
    thousands); ``total`` and ``truncated`` say how many there were.
    """

    kind: RecommendationKind
    locations: list[LocationRef]
    total: Total
    truncated: Truncated


class AlertRaisedData(msgspec.Struct, frozen=True):
    """A session's assigned E911 location looks wrong; where the session may be instead."""

    alert_id: Id
    account_id: Id
    user_id: Id
    session_id: Id
    ip: IpAddressText
    assigned_location: LocationRef | None
    recommendation: RecommendationData
    matched_by: MatchedBy | None
    checked_at: Timestamp


class AlertResolvedData(msgspec.Struct, frozen=True):
    """An alert no longer applies, and why."""

    alert_id: Id
    account_id: Id
    user_id: Id
    session_id: Id
    reason: ResolveReason
    resolved_at: Timestamp


# The data type of every outbound event type, for the generated contracts.
ALERT_DATA: dict[str, type[msgspec.Struct]] = {
    RAISED: AlertRaisedData,
    RESOLVED: AlertResolvedData,
}


def location_ref(loc: Location) -> LocationRef:
    return LocationRef(loc.location_id, loc.name, loc.address_line)


def optional_ref(loc: Location | None) -> LocationRef | None:
    return None if loc is None else location_ref(loc)

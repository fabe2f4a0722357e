"""Plain values shared by the pure evaluation and the I/O around it.

They import no I/O library, so every rule can be tested with literals.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from e911d.consumers.ip import IPNetwork


class Outcome(enum.StrEnum):
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"
    MATCH = "match"
    MISMATCH = "mismatch"
    UNDETERMINED = "undetermined"


class RecommendationKind(enum.StrEnum):
    IP_GROUP_MATCH = "ip_group_match"
    ALL_LOCATIONS = "all_locations"


class MatchedBy(enum.StrEnum):
    """The signal that located the session for the recommendation (null: none did)."""

    # Only IP matching exists so far; further signals (SPEC §3.3) become members here.

    IP = "ip"


class ResolveReason(enum.StrEnum):
    LOCATION_UPDATED = "location_updated"
    LOCATION_MATCHED = "location_matched"
    SUPERSEDED = "superseded"
    DISMISSED = "dismissed"
    SESSION_ENDED = "session_ended"
    RECOMMENDATIONS_DISABLED = "recommendations_disabled"


@dataclass(frozen=True, slots=True)
class Location:
    location_id: str
    name: str


@dataclass(frozen=True, slots=True)
class IpGroup:
    ip_group_id: str
    name: str
    location_id: str | None
    networks: tuple[IPNetwork, ...]


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    e911_recommendations: bool


@dataclass(frozen=True, slots=True)
class User:
    account_id: str
    user_id: str
    e911_recommendations: bool
    e911_location_id: str | None


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: RecommendationKind
    locations: tuple[Location, ...]
    # None when no signal located the session (all_locations): every location is offered.
    matched_by: MatchedBy | None = None


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """The alert a session currently shows, as stored."""

    alert_id: str
    fingerprint: str
    # The location the user was assigned when the alert was raised: if it differs now,
    # whatever settles the alert was the user's (or admin's) update, not a move.
    assigned_location_id: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check concluded about one session, before any alert bookkeeping."""

    outcome: Outcome
    assigned_location: Location | None = None
    recommendation: Recommendation | None = None
    matched_prefix_len: int | None = None
    matched_ip_groups: tuple[str, ...] = field(default=())

    @property
    def fingerprint(self) -> str | None:
        """Stable identity of a mismatch: (assigned location, sorted recommended ids)."""
        if self.outcome is not Outcome.MISMATCH or self.recommendation is None:
            return None
        return fingerprint_of(
            self.assigned_location.location_id if self.assigned_location else None,
            [loc.location_id for loc in self.recommendation.locations],
        )


def fingerprint_of(assigned_location_id: str | None, recommended_ids: list[str]) -> str:
    """A short hex digest, so the identity is cheap to store and index.

    Control characters cannot occur in a validated id, so the joined form is unambiguous.
    """
    assigned = "" if assigned_location_id is None else "=" + assigned_location_id
    joined = assigned + "\x1e" + "\x1f".join(sorted(set(recommended_ids)))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]

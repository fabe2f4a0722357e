"""Plain values shared by the pure evaluation and the I/O around it.

They import no I/O library, so every rule can be tested with literals.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from e911d.daemon.core.ip import IPNetwork
from e911d.daemon.core.network import SwitchRef
from e911d.daemon.core.network_key import NetworkKey


class Outcome(enum.StrEnum):
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"
    MATCH = "match"
    MISMATCH = "mismatch"
    UNDETERMINED = "undetermined"
    # The account has no locations at all: the administrator's problem, not the user's.
    NO_LOCATIONS = "no_locations"


class RecommendationKind(enum.StrEnum):
    IP_GROUP_MATCH = "ip_group_match"
    ALL_LOCATIONS = "all_locations"
    NEAREST_LOCATIONS = "nearest_locations"
    # The one location the user confirmed on this network (docs/spec.md#networks-a-user-confirmed).
    USER_CONFIRMED = "user_confirmed"


class MatchedBy(enum.StrEnum):
    """The signal that located the session (docs/spec.md#signal-precedence), highest
    precedence first; null in an alert when none did (``all_locations``)."""

    BSSID = "bssid"
    SWITCH_PORT = "switch_port"
    SWITCH = "switch"
    IP = "ip"
    # No administrator signal matched; the user's own confirmed network decided.
    USER_CONFIRMED = "user_confirmed"
    GEOIP = "geoip"


class ResolveReason(enum.StrEnum):
    LOCATION_UPDATED = "location_updated"
    LOCATION_MATCHED = "location_matched"
    SUPERSEDED = "superseded"
    DISMISSED = "dismissed"
    SESSION_ENDED = "session_ended"
    RECOMMENDATIONS_DISABLED = "recommendations_disabled"
    # Nothing says the user is elsewhere any more; we do not claim they moved.
    LOCATION_UNDETERMINED = "location_undetermined"
    USER_UNKNOWN = "user_unknown"


@dataclass(frozen=True, slots=True)
class Location:
    location_id: str
    name: str
    # (lat, lon) in degrees; only the optional geolocation check reads them.
    coordinates: tuple[float, float] | None = field(default=None, compare=False)
    # The dispatchable address on one line (daemon.core.address), shown in alerts;
    # display only: never part of what makes two alerts the same.
    address_line: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class IpGroup:
    ip_group_id: str
    name: str
    location_id: str | None
    networks: tuple[IPNetwork, ...]
    # Normalised BSSIDs and patterns (daemon.core.network), and switches or ports.
    bssids: tuple[str, ...] = ()
    switches: tuple[SwitchRef, ...] = ()
    # False: a VPN egress, a carrier NAT: when it decides, the outcome is undetermined.
    locating: bool = True


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
    # recommended_key of the locations when the snapshot has it ready (all_locations:
    # once per snapshot, not at every check of an account of 20,000 locations).
    key: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """The alert a session currently shows, as stored."""

    alert_id: str
    fingerprint: str
    # The location the user was assigned when the alert was raised: if it differs now,
    # whatever settles the alert was the user's (or admin's) update, not a move.
    assigned_location_id: str | None


@dataclass(frozen=True, slots=True)
class SignalMatch:
    """What one signal matched in an account's directory (docs/spec.md#signal-precedence).

    ``location_ids``: the locations of the matching locating groups. ``locating`` is
    False when a non-locating group matched at this level: it then decides
    ``undetermined`` whatever else matched beside it (better no alert than a wrong
    one). ``key``: what matched (the network, the BSSID or its pattern, the port).
    """

    signal: MatchedBy
    location_ids: frozenset[str]
    group_ids: tuple[str, ...]
    locating: bool = True
    key: str = ""
    prefix_len: int | None = None


@dataclass(frozen=True, slots=True)
class GeoEvidence:
    """The optional geolocation check's reading (docs/spec.md#geolocation-check), for alerts and
    explain."""

    lat: float
    lon: float
    accuracy_km: float
    distance_km: float | None
    limit_km: float


@dataclass(frozen=True, slots=True)
class ConfirmedNetwork:
    """A network a user confirmed a location on (docs/spec.md#networks-a-user-confirmed).

    It belongs to one user of one account: the evaluation never lets it decide for
    anyone else, whatever the caller hands in.
    """

    account_id: str
    user_id: str
    key: NetworkKey
    location_id: str
    first_confirmed_at: dt.datetime | None = field(default=None, compare=False)
    last_confirmed_at: dt.datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check concluded about one session, before any alert bookkeeping."""

    outcome: Outcome
    assigned_location: Location | None = None
    recommendation: Recommendation | None = None
    # The signal that decided (None: nothing matched).
    match: SignalMatch | None = None
    geo: GeoEvidence | None = None
    # The user's own confirmed network, when it decided (match.signal is then
    # USER_CONFIRMED): explain shows it; no group located the session.
    confirmed: ConfirmedNetwork | None = None

    @property
    def matched_by(self) -> MatchedBy | None:
        return None if self.match is None else self.match.signal

    @property
    def matched_prefix_len(self) -> int | None:
        return None if self.match is None else self.match.prefix_len

    @property
    def matched_ip_groups(self) -> tuple[str, ...]:
        """The groups that decided, whichever signal matched them."""
        return () if self.match is None else self.match.group_ids

    @property
    def fingerprint(self) -> str | None:
        """Stable identity of a mismatch: (assigned location, sorted recommended ids)."""
        if self.outcome is not Outcome.MISMATCH or self.recommendation is None:
            return None
        rec = self.recommendation
        key = rec.key
        if key is None:
            key = recommended_key(loc.location_id for loc in rec.locations)
        return fingerprint_with(
            self.assigned_location.location_id if self.assigned_location else None, key
        )


def recommended_key(recommended_ids: Iterable[str]) -> str:
    """The recommended ids, sorted and joined: what a fingerprint hashes of them.

    Control characters cannot occur in a validated id, so the joined form is unambiguous.
    """
    return "\x1f".join(sorted(set(recommended_ids)))


def fingerprint_with(assigned_location_id: str | None, key: str) -> str:
    """A short hex digest, so the identity is cheap to store and index."""
    assigned = "" if assigned_location_id is None else "=" + assigned_location_id
    joined = assigned + "\x1e" + key
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def fingerprint_of(assigned_location_id: str | None, recommended_ids: Iterable[str]) -> str:
    """(assigned location, sorted recommended ids) as a short hex digest."""
    return fingerprint_with(assigned_location_id, recommended_key(recommended_ids))

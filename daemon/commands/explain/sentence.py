"""The "Why" line: the reason for an outcome, in one sentence support can read out.

It is chosen by the verdict (never recomputed), so it cannot contradict it; the
signal rows and the IP winner only supply the names and networks to quote. Kept
apart from the reasoning so the wording can change without touching the rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from e911d.daemon.commands.explain.explanation import DANGLING, AssignedLocation, SignalRow, Winner
from e911d.daemon.core.model import (
    Account,
    GeoEvidence,
    Location,
    MatchedBy,
    Outcome,
    RecommendationKind,
    Verdict,
)
from e911d.daemon.core.network import NetworkSignals, format_chassis_id

# What settles an open alert when nothing says the user is elsewhere
# (docs/spec.md#what-a-check-decides).
SETTLED = (
    "no alert (an open one is resolved: location_updated if the assigned location "
    "changed since it was raised, else location_undetermined)"
)


def names(locations: Sequence[Location]) -> str:
    """``A``, ``A and B``, ``A, B and C``: how a person lists places."""
    found = [loc.name for loc in locations]
    if len(found) <= 1:
        return "".join(found)
    return ", ".join(found[:-1]) + " and " + found[-1]


def _subject(row: SignalRow, network: NetworkSignals | None) -> str:
    """The signal as the subject of a sentence: "the client's access point …"."""
    if row.signal is MatchedBy.BSSID:
        return f"the client's access point {row.value}"
    if row.signal in (MatchedBy.SWITCH_PORT, MatchedBy.SWITCH) and network is not None:
        chassis = format_chassis_id(network.chassis_id or "")
        if row.signal is MatchedBy.SWITCH_PORT:
            return f"the client's switch port {network.port_id} on {chassis}"
        return f"the client's switch {chassis}"
    return f"the IP's network {row.key}"


def _located(row: SignalRow, winner: Winner | None, network: NetworkSignals | None) -> str:
    """Where the deciding signal puts the session, quoting what matched."""
    where = names(row.locations)
    if row.signal is MatchedBy.IP and winner is not None:
        return f"the IP is on the network of {where} ({winner.network}, /{winner.prefix_len})"
    via = ""
    if row.signal is MatchedBy.BSSID and row.key.endswith("*"):
        via = f" (through the pattern {row.key})"
    return f"{_subject(row, network)} belongs to {where}{via}"


def _nothing_matched(rows: Sequence[SignalRow], network: NetworkSignals | None) -> str:
    if len(rows) <= 1 or network is None:
        return "the IP is on none of the account's networks"
    presented = []
    for row in rows:
        if row.signal is MatchedBy.IP:
            presented.append(f"IP {row.value}")
        else:
            presented.append(_subject(row, network).removeprefix("the client's "))
    return f"none of the signals ({', '.join(presented)}) matches the account's IP groups"


def _geo_reading(geo: GeoEvidence, name: str) -> str:
    away = "an unknown distance" if geo.distance_km is None else f"{geo.distance_km:.0f} km"
    return (
        f"geolocation places the IP at {geo.lat:.4f}, {geo.lon:.4f}, {away} from {name} "
        f"(allowed: {geo.limit_km:.0f} km, max_distance_km plus the database's "
        f"{geo.accuracy_km:.0f} km accuracy radius)"
    )


def sentence(
    account: Account | None,
    assigned: AssignedLocation,
    winner: Winner | None,
    verdict: Verdict,
    rows: Sequence[SignalRow],
    network: NetworkSignals | None,
) -> str:
    """The reason in one line, chosen by the verdict so it cannot contradict it."""
    outcome = verdict.outcome
    if outcome is Outcome.UNKNOWN_USER:
        what = "account" if account is None else "user"
        return (
            f"unknown_user: the {what} is not in the directory, so no rule applies "
            "and no alert is raised (an open one is resolved user_unknown)"
        )
    if outcome is Outcome.DISABLED:
        return (
            "disabled: recommendations are off for this user (the account toggle is off "
            "and so is the user's own): no alert, and an open one is resolved as "
            "recommendations_disabled"
        )
    if outcome is Outcome.NO_LOCATIONS:
        return (
            "no_locations: the account has no locations at all, so nothing can be "
            "recommended: no alert (an open one is resolved location_undetermined); "
            "the administrator must add a location"
        )
    decided = next((r for r in rows if r.decided), None)
    if outcome is Outcome.UNDETERMINED and decided is not None and not decided.locating:
        groups = ", ".join(decided.ip_group_ids)
        tie = ""
        if decided.locations:
            tie = (
                f"; it ties with a locating group of {names(decided.locations)} at the same "
                "level, and no alert is better than a wrong one"
            )
        return (
            f"undetermined: {_subject(decided, network)} is a non-locating network "
            f"(group {groups}: a VPN egress, a carrier NAT or the like says nothing about "
            f"where the user is){tie}: {SETTLED}"
        )
    nothing = _nothing_matched(rows, network)
    if verdict.confirmed is not None:
        return _confirmed_sentence(verdict, nothing)
    no_assigned = "the user has no assigned location"
    if assigned.status == DANGLING:
        no_assigned = (
            f"the user's assigned location {assigned.location_id!r} names no location of "
            "this account (treated as none)"
        )
    if outcome is Outcome.MATCH:
        assert decided is not None and assigned.name is not None  # noqa: S101  a match has both
        on = _located(decided, winner, network)
        if len(decided.locations) == 1:
            return f"match: {on}, which is the assigned location"
        return f"match: {on}, which includes the assigned location {assigned.name}"
    if outcome is Outcome.UNDETERMINED:
        reading = ""
        if verdict.geo is not None:
            reading = f"; {_geo_reading(verdict.geo, assigned.name or '')}, which is close enough"
        return (
            f"undetermined: {nothing} and {assigned.name} has no IP groups, so its network "
            f"cannot be confirmed{reading}: {SETTLED}"
        )
    rec = verdict.recommendation
    assert rec is not None  # noqa: S101  a mismatch always carries a recommendation
    if rec.kind is RecommendationKind.IP_GROUP_MATCH:
        assert decided is not None  # noqa: S101  ip_group_match comes from a matching signal
        on = _located(decided, winner, network)
        if verdict.assigned_location is None:
            return f"mismatch: {no_assigned}; {on}, so that is recommended"
        return f"mismatch: {on} but the assigned location is {verdict.assigned_location.name}"
    if rec.kind is RecommendationKind.NEAREST_LOCATIONS and verdict.geo is not None:
        name = verdict.assigned_location.name if verdict.assigned_location else ""
        return (
            f"mismatch: {nothing} and {name} has no IP groups; "
            f"{_geo_reading(verdict.geo, name)}, which is too far, so the account's located "
            "places are recommended, nearest first"
        )
    if verdict.assigned_location is None:
        return f"mismatch: {no_assigned} and {nothing}, so every location is recommended"
    name = verdict.assigned_location.name
    return (
        f"mismatch: {nothing}, but {name} has IP groups, "
        f"so the user is not on its network; every location is recommended"
    )


def _confirmed_sentence(verdict: Verdict, nothing: str) -> str:
    """docs/spec.md#networks-a-user-confirmed: the user's own entry decided."""
    entry = verdict.confirmed
    assert entry is not None  # noqa: S101  the caller checked
    rec = verdict.recommendation
    chosen = rec.locations[0].name if rec is not None and rec.locations else None
    assigned = verdict.assigned_location
    on = f"{entry.key.kind} {entry.key.display}"
    if verdict.outcome is Outcome.MATCH and assigned is not None:
        return (
            f"match: {nothing}, but this user confirmed {assigned.name} on this network "
            f"({on}) before, and it is the assigned location"
        )
    now = (
        "the user has no assigned location"
        if assigned is None
        else (f"the assigned location is {assigned.name}")
    )
    return (
        f"mismatch: {nothing}, but this user confirmed {chosen} on this network ({on}) "
        f"before and {now}, so {chosen} is recommended (user_confirmed)"
    )

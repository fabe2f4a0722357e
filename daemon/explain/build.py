"""How a user on an IP gets an outcome, built from the database into plain values.

Support engineers answer "why did I get this alert?" with it, so it must never
disagree with the daemon: the outcome, the recommendation and the fingerprint come
from the daemon's own pure rules (:func:`daemon.evaluation.evaluate` on an
:class:`~daemon.evaluation.AccountDirectory` built exactly as the checks build it).
Everything else (every containing IP group, why a group is ignored, the reasoning
behind the effective setting) is computed alongside to make the verdict readable,
and the winner is taken from the directory's own longest-prefix lookup.

:func:`build_explanation` does no I/O so every branch is tested with literals;
:func:`load_explanation` only reads the rows it needs and hands them to it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence

import asyncpg

from e911d.consumers.ip import IPAddress, IPNetwork, parse_address_item
from e911d.daemon.db import load_queries
from e911d.daemon.evaluation import AccountDirectory, evaluate
from e911d.daemon.explain.model import (
    ASSIGNED,
    DANGLING,
    NONE,
    UNKNOWN,
    ActiveSession,
    AssignedLocation,
    ContainingGroup,
    EffectiveSetting,
    Explanation,
    GroupRow,
    IpInput,
    Winner,
    on_off,
)
from e911d.daemon.model import (
    Account,
    IpGroup,
    Location,
    Outcome,
    RecommendationKind,
    User,
    Verdict,
)

SQL = load_queries("explain.sql")


def _effective(account: Account | None, user: User | None) -> EffectiveSetting:
    if account is None:
        return EffectiveSetting(None, "unknown: the account is not in the directory")
    if user is None:
        return EffectiveSetting(None, "unknown: the user is not in the directory")
    own = on_off(user.e911_recommendations)
    if account.e911_recommendations:
        return EffectiveSetting(
            True, f"on: the account toggle is on and overrides the user's own ({own})"
        )
    if user.e911_recommendations:
        return EffectiveSetting(True, "on: the account toggle is off; the user's own toggle is on")
    return EffectiveSetting(
        False, "off: the account toggle is off, so the user's own toggle decides (off)"
    )


def _assigned(user: User | None, locations: dict[str, Location]) -> AssignedLocation:
    if user is None:
        return AssignedLocation(UNKNOWN, None, None, "unknown (the user is not in the directory)")
    lid = user.e911_location_id
    if lid is None:
        return AssignedLocation(NONE, None, None, "none")
    loc = locations.get(lid)
    if loc is None:
        return AssignedLocation(
            DANGLING,
            lid,
            None,
            f"{lid!r} names no location of this account — treated as no location",
        )
    return AssignedLocation(ASSIGNED, lid, loc.name, f"{lid} ({loc.name})")


def _address_item(group: GroupRow, network: IPNetwork) -> str | None:
    """The raw entry a network came from, so support can point at what to edit."""
    for item in group.addresses:
        try:
            if network in parse_address_item(item):
                return item
        except ValueError:
            continue
    return None


def _containing(
    ip: IPAddress,
    groups: Iterable[GroupRow],
    locations: dict[str, Location],
    winning_groups: frozenset[str],
) -> tuple[ContainingGroup, ...]:
    found: list[ContainingGroup] = []
    for g in groups:
        nets = [n for n in g.networks if n.version == ip.version and ip in n]
        if not nets:
            continue
        best = max(nets, key=lambda n: n.prefixlen)
        loc = locations.get(g.location_id) if g.location_id is not None else None
        if g.location_id is None:
            ignored: str | None = "tied to no location: ignored by the rules"
        elif loc is None:
            ignored = (
                f"tied to location {g.location_id!r}, which does not exist: ignored by the rules"
            )
        else:
            ignored = None
        found.append(
            ContainingGroup(
                ip_group_id=g.ip_group_id,
                name=g.name,
                location_id=g.location_id,
                location_name=loc.name if loc else None,
                network=best,
                address_item=_address_item(g, best),
                counted=ignored is None,
                ignored_reason=ignored,
                winner=g.ip_group_id in winning_groups,
            )
        )
    found.sort(key=lambda c: (-c.prefix_len, c.ip_group_id))
    return tuple(found)


def _names(locations: Sequence[Location]) -> str:
    names = [loc.name for loc in locations]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _sentence(
    account: Account | None, assigned: AssignedLocation, winner: Winner | None, verdict: Verdict
) -> str:
    """The reason in one line, chosen by the verdict so it cannot contradict it."""
    outcome = verdict.outcome
    if outcome is Outcome.UNKNOWN_USER:
        what = "account" if account is None else "user"
        return (
            f"unknown_user: the {what} is not in the directory, so no rule applies "
            "and no alert is raised"
        )
    if outcome is Outcome.DISABLED:
        return (
            "disabled: recommendations are off for this user (the account toggle is off "
            "and so is the user's own): no alert, and an open one is resolved as "
            "recommendations_disabled"
        )
    on_net = ""
    if winner is not None:
        on_net = (
            f"the IP is on the network of {_names(winner.locations)} "
            f"({winner.network}, /{winner.prefix_len})"
        )
    no_assigned = "the user has no assigned location"
    if assigned.status == DANGLING:
        no_assigned = (
            f"the user's assigned location {assigned.location_id!r} names no location of "
            "this account (treated as none)"
        )
    if outcome is Outcome.MATCH:
        assert winner is not None and assigned.name is not None  # noqa: S101  a match has both
        if len(winner.locations) == 1:
            return f"match: {on_net}, which is the assigned location"
        return f"match: {on_net}, which includes the assigned location {assigned.name}"
    if outcome is Outcome.NO_LOCATIONS:
        return (
            "no_locations: the account has no locations at all, so nothing can be "
            "recommended: no alert (an open one is resolved location_undetermined); "
            "the administrator must add a location"
        )
    if outcome is Outcome.UNDETERMINED:
        return (
            f"undetermined: the IP is on none of the account's networks and {assigned.name} "
            "has no IP groups, so its network cannot be confirmed: no alert (an open one is "
            "resolved: location_updated if the assigned location changed since it was raised, "
            "else location_undetermined)"
        )
    rec = verdict.recommendation
    assert rec is not None  # noqa: S101  a mismatch always carries a recommendation
    if rec.kind is RecommendationKind.IP_GROUP_MATCH:
        if verdict.assigned_location is None:
            return f"mismatch: {no_assigned}; {on_net}, so that is recommended"
        return f"mismatch: {on_net} but the assigned location is {verdict.assigned_location.name}"
    if verdict.assigned_location is None:
        return (
            f"mismatch: {no_assigned} and the IP is on none of the account's networks, "
            "so every location is recommended"
        )
    name = verdict.assigned_location.name
    return (
        f"mismatch: the IP is on none of the account's networks, but {name} has IP groups, "
        f"so the user is not on its network; every location is recommended"
    )


def build_explanation(
    *,
    account_id: str,
    user_id: str,
    ip: IpInput,
    account: Account | None,
    user: User | None,
    locations: Iterable[Location],
    ip_groups: Iterable[GroupRow],
    sessions: Iterable[ActiveSession] = (),
) -> Explanation:
    """The whole answer from plain values; no I/O, so every branch is unit-tested."""
    locs = tuple(locations)
    groups = tuple(ip_groups)
    by_id = {loc.location_id: loc for loc in locs}
    directory = AccountDirectory(
        account_id,
        locs,
        [IpGroup(g.ip_group_id, g.name, g.location_id, g.networks) for g in groups],
    )
    # The checks have no snapshot for an unknown account; the lookup below still uses
    # the rows, so explain shows which networks would apply once the account exists.
    verdict = evaluate(directory if account is not None else None, account, user, ip.address)
    hit = directory.match(ip.address)
    winner = None
    if hit is not None and hit.prefix_len is not None:
        network = ipaddress.ip_network((int(ip.address), hit.prefix_len), strict=False)
        winner = Winner(
            hit.prefix_len, network, hit.group_ids, directory.sorted_locations(hit.location_ids)
        )
    effective = _effective(account, user)
    assigned = _assigned(user, by_id)
    return Explanation(
        account_id=account_id,
        account=account,
        user_id=user_id,
        user=user,
        effective=effective,
        assigned=assigned,
        ip=ip,
        containing_groups=_containing(
            ip.address, groups, by_id, frozenset(hit.group_ids if hit else ())
        ),
        winner=winner,
        verdict=verdict,
        sentence=_sentence(account, assigned, winner, verdict),
        sessions=tuple(sessions),
    )


async def load_explanation(
    conn: asyncpg.Connection,
    *,
    account_id: str,
    user_id: str,
    ip: IpInput,
    snooze: dt.timedelta = dt.timedelta(hours=1),
) -> Explanation:
    """Read everything in one read-only snapshot, then explain it (pure)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        a = await conn.fetchrow(SQL["account"], account_id)
        u = await conn.fetchrow(SQL["user"], account_id, user_id)
        loc_rows = await conn.fetch(SQL["locations"], account_id)
        group_rows = await conn.fetch(SQL["ip_groups"], account_id)
        session_rows = await conn.fetch(SQL["sessions"], account_id, user_id)
        snoozes: dict[str, list[tuple[str, dt.datetime]]] = {}
        for r in await conn.fetch(SQL["snoozes"], account_id, user_id, snooze):
            snoozes.setdefault(r["session_id"], []).append(
                (r["fingerprint"], r["dismissed_at"] + snooze)
            )
    return build_explanation(
        account_id=account_id,
        user_id=user_id,
        ip=ip,
        account=None if a is None else Account(account_id, a["e911_recommendations"]),
        user=None
        if u is None
        else User(account_id, user_id, u["e911_recommendations"], u["e911_location_id"]),
        locations=[Location(r["location_id"], r["name"]) for r in loc_rows],
        ip_groups=[
            GroupRow(
                r["ip_group_id"],
                r["name"],
                r["location_id"],
                tuple(r["addresses"]),
                tuple(ipaddress.ip_network(n) for n in r["networks"]),
            )
            for r in group_rows
        ],
        sessions=[
            ActiveSession(
                r["session_id"],
                r["ip"],
                r["logged_in_at"],
                r["alert_id"],
                r["fingerprint"],
                r["raised_at"],
                tuple(snoozes.get(r["session_id"], ())),
            )
            for r in session_rows
        ],
    )

"""``e911d explain``: why a user on an IP gets which outcome (SPEC §2.1, §2.3).

Support engineers answer "why did I get this alert?" with it, so it must never
disagree with the daemon: the outcome, the recommendation and the fingerprint come
from the daemon's own pure rules (:func:`daemon.evaluation.evaluate` on an
:class:`~daemon.evaluation.AccountDirectory` built exactly as the checks build it).
Everything else printed (every containing IP group, why a group is ignored, the
reasoning behind the effective setting) is computed alongside to make the verdict
readable, and the winner is taken from the directory's own longest-prefix lookup.

The module is split so that the reasoning is tested with literals: a pure
:func:`build_explanation`, two renderers, and the command that reads the database.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from e911d.config import Settings
from e911d.consumers.ip import IPAddress, IPNetwork, parse_address_item, parse_ip
from e911d.daemon.db import TRANSIENT, DatabaseError, PoolConfig, connect_pool, load_queries
from e911d.daemon.evaluation import AccountDirectory, evaluate
from e911d.daemon.model import (
    Account,
    IpGroup,
    Location,
    Outcome,
    RecommendationKind,
    User,
    Verdict,
)

EXIT_OK = 0
EXIT_DATABASE = 1
EXIT_INVALID_IP = 2

# Status of the user's assigned location, as the rules see it.
ASSIGNED = "assigned"
NONE = "none"
DANGLING = "dangling"
UNKNOWN = "unknown"


class InvalidIp(ValueError):
    """The --ip value is not something the daemon would accept as a session's IP."""


@dataclass(frozen=True, slots=True)
class IpInput:
    """The IP as typed and as the daemon would store it (IPv4-mapped IPv6 → IPv4)."""

    text: str
    address: IPAddress
    ipv4_mapped: bool


def parse_input_ip(text: str) -> IpInput:
    """Same acceptance rules as session events, with a hint an operator can act on."""
    try:
        address = parse_ip(text)
    except ValueError as exc:
        raise InvalidIp(f"--ip {text[:80]!r} is not a valid IP address: {_ip_hint(text)}") from exc
    mapped = address.version == 4 and ":" in text
    return IpInput(text, address, mapped)


def _ip_hint(text: str) -> str:
    if not text:
        return "it is empty"
    if text != text.strip():
        return "remove the surrounding whitespace"
    if "%" in text:
        return "zone ids (the %... suffix) are not accepted"
    if "/" in text:
        return "give one address, not a network"
    if len(text) > 64:
        return "it is too long"
    if all(part.isdigit() for part in text.split(".")) and any(
        len(part) > 1 and part.startswith("0") for part in text.split(".")
    ):
        return "leading zeros are refused (some systems read them as octal)"
    return "expected an IPv4 (192.0.2.1) or IPv6 (2001:db8::1) address"


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One IP group as stored: the raw addresses and the exact networks matched."""

    ip_group_id: str
    name: str
    location_id: str | None
    addresses: tuple[str, ...]
    networks: tuple[IPNetwork, ...]


@dataclass(frozen=True, slots=True)
class ActiveSession:
    session_id: str
    ip: str
    logged_in_at: dt.datetime
    open_alert_id: str | None = None
    open_alert_fingerprint: str | None = None
    open_alert_raised_at: dt.datetime | None = None
    # Fingerprints the user dismissed on this session, with when each snooze ends: a
    # mismatch with one of them is not raised again until then ("why no alert?").
    snoozed: tuple[tuple[str, dt.datetime], ...] = ()

    def snoozed_until(self, fingerprint: str | None) -> dt.datetime | None:
        return next((until for fp, until in self.snoozed if fp == fingerprint), None)


@dataclass(frozen=True, slots=True)
class EffectiveSetting:
    enabled: bool | None  # None: the account or the user is unknown
    reason: str


@dataclass(frozen=True, slots=True)
class AssignedLocation:
    status: str  # ASSIGNED, NONE, DANGLING or UNKNOWN
    location_id: str | None
    name: str | None
    description: str


@dataclass(frozen=True, slots=True)
class ContainingGroup:
    """An IP group with a network that contains the IP (its most specific one)."""

    ip_group_id: str
    name: str
    location_id: str | None
    location_name: str | None
    network: IPNetwork
    address_item: str | None  # the raw entry (address, CIDR, range) that gave the network
    counted: bool
    ignored_reason: str | None
    winner: bool

    @property
    def prefix_len(self) -> int:
        return self.network.prefixlen


@dataclass(frozen=True, slots=True)
class Winner:
    prefix_len: int
    network: IPNetwork
    ip_group_ids: tuple[str, ...]
    locations: tuple[Location, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    account_id: str
    account: Account | None
    user_id: str
    user: User | None
    effective: EffectiveSetting
    assigned: AssignedLocation
    ip: IpInput
    containing_groups: tuple[ContainingGroup, ...]
    winner: Winner | None
    verdict: Verdict
    sentence: str
    sessions: tuple[ActiveSession, ...]

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome

    @property
    def fingerprint(self) -> str | None:
        return self.verdict.fingerprint


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _effective(account: Account | None, user: User | None) -> EffectiveSetting:
    if account is None:
        return EffectiveSetting(None, "unknown: the account is not in the directory")
    if user is None:
        return EffectiveSetting(None, "unknown: the user is not in the directory")
    own = _on(user.e911_recommendations)
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
    if outcome is Outcome.UNDETERMINED:
        return (
            f"undetermined: the IP is on none of the account's networks and {assigned.name} "
            "has no IP groups, so its network cannot be confirmed: no alert (an open one is "
            "resolved: location_updated if the assigned location changed since it was raised, "
            "else location_matched)"
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
    if hit is not None:
        network = ipaddress.ip_network((int(ip.address), hit.prefix_len), strict=False)
        winner = Winner(
            hit.prefix_len, network, hit.ip_group_ids, directory.sorted_locations(hit.location_ids)
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
            ip.address, groups, by_id, frozenset(hit.ip_group_ids if hit else ())
        ),
        winner=winner,
        verdict=verdict,
        sentence=_sentence(account, assigned, winner, verdict),
        sessions=tuple(sessions),
    )


# ---- rendering ----------------------------------------------------------------------


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _loc_json(loc: Location) -> dict[str, str]:
    return {"location_id": loc.location_id, "name": loc.name}


def _same_ip(a: str, b: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(a) == b
    except ValueError:
        return False


def to_json(ex: Explanation) -> dict[str, Any]:
    """The documented ``--json`` shape (docs/explain.md); keys are only ever added."""
    rec = ex.verdict.recommendation
    return {
        "account": {
            "account_id": ex.account_id,
            "known": ex.account is not None,
            "e911_recommendations": ex.account.e911_recommendations if ex.account else None,
        },
        "user": {
            "user_id": ex.user_id,
            "known": ex.user is not None,
            "e911_recommendations": ex.user.e911_recommendations if ex.user else None,
            "e911_location_id": ex.user.e911_location_id if ex.user else None,
        },
        "effective_setting": {"enabled": ex.effective.enabled, "reason": ex.effective.reason},
        "assigned_location": {
            "status": ex.assigned.status,
            "location_id": ex.assigned.location_id,
            "name": ex.assigned.name,
            "description": ex.assigned.description,
        },
        "ip": {
            "input": ex.ip.text,
            "normalized": str(ex.ip.address),
            "ipv4_mapped": ex.ip.ipv4_mapped,
        },
        "containing_groups": [
            {
                "ip_group_id": g.ip_group_id,
                "name": g.name,
                "location_id": g.location_id,
                "location_name": g.location_name,
                "network": str(g.network),
                "prefix_len": g.prefix_len,
                "address": g.address_item,
                "counted": g.counted,
                "ignored_reason": g.ignored_reason,
                "winner": g.winner,
            }
            for g in ex.containing_groups
        ],
        "winner": None
        if ex.winner is None
        else {
            "prefix_len": ex.winner.prefix_len,
            "network": str(ex.winner.network),
            "ip_group_ids": list(ex.winner.ip_group_ids),
            "locations": [_loc_json(loc) for loc in ex.winner.locations],
        },
        "outcome": str(ex.outcome),
        "recommendation": None
        if rec is None
        else {"kind": str(rec.kind), "locations": [_loc_json(loc) for loc in rec.locations]},
        "fingerprint": ex.fingerprint,
        "explanation": ex.sentence,
        "sessions": [
            {
                "session_id": s.session_id,
                "ip": s.ip,
                "same_ip": _same_ip(s.ip, ex.ip.address),
                "logged_in_at": _iso(s.logged_in_at),
                "open_alert": None
                if s.open_alert_id is None
                else {
                    "alert_id": s.open_alert_id,
                    "fingerprint": s.open_alert_fingerprint,
                    "raised_at": _iso(s.open_alert_raised_at),
                    "same_fingerprint": ex.fingerprint is not None
                    and s.open_alert_fingerprint == ex.fingerprint,
                },
                "snoozed_until": _iso(s.snoozed_until(ex.fingerprint))
                if ex.fingerprint is not None
                else None,
            }
            for s in ex.sessions
        ],
    }


def render_json(ex: Explanation) -> str:
    return json.dumps(to_json(ex), indent=2)


def _loc_text(loc: Location) -> str:
    return f"{loc.name} ({loc.location_id})"


def render_text(ex: Explanation) -> str:
    """For a person at a terminal: one fact per line, the reasoning last."""
    lines: list[str] = []
    add = lines.append
    if ex.account is None:
        add(f"Account      {ex.account_id}: not in the directory")
    else:
        add(f"Account      {ex.account_id}: account toggle {_on(ex.account.e911_recommendations)}")
    if ex.user is None:
        add(f"User         {ex.user_id}: not in the directory")
    else:
        lid = ex.user.e911_location_id
        add(
            f"User         {ex.user_id}: own toggle {_on(ex.user.e911_recommendations)}, "
            f"assigned location id {lid if lid is not None else 'none'}"
        )
    add(f"Setting      {ex.effective.reason}")
    add(f"Assigned     {ex.assigned.description}")
    ip_line = f"IP           {ex.ip.address}"
    if ex.ip.ipv4_mapped:
        ip_line += f" (given as {ex.ip.text}: an IPv4-mapped IPv6 address, checked as IPv4)"
    add(ip_line)
    add("")
    if not ex.containing_groups:
        add(f"IP groups    none of the account's IP groups contains {ex.ip.address}")
    else:
        add(f"IP groups containing {ex.ip.address} (most specific first):")
        for g in ex.containing_groups:
            target = (
                f"{g.location_id} ({g.location_name})"
                if g.location_name is not None
                else (g.location_id or "no location")
            )
            mark = "  <- winner" if g.winner else ""
            add(f"  /{g.prefix_len:<3} {g.network}  {g.ip_group_id} ({g.name}) -> {target}{mark}")
            if g.address_item is not None and g.address_item != str(g.network):
                add(f"        from address entry {g.address_item}")
            if g.ignored_reason is not None:
                add(f"        {g.ignored_reason}")
    if ex.winner is None:
        add("Winner       none: no counted IP group contains the IP")
    else:
        w = ex.winner
        tie = f" (a tie of {len(w.ip_group_ids)} groups)" if len(w.ip_group_ids) > 1 else ""
        locs = ", ".join(_loc_text(loc) for loc in w.locations)
        add(f"Winner       /{w.prefix_len} {w.network} -> {locs}{tie}")
    add("")
    add(f"Outcome      {ex.outcome}")
    rec = ex.verdict.recommendation
    if rec is not None:
        add(f"Recommended  {rec.kind}: " + ", ".join(_loc_text(loc) for loc in rec.locations))
    if ex.fingerprint is not None:
        add(f"Fingerprint  {ex.fingerprint}")
    add(f"Why          {ex.sentence}")
    add("")
    if not ex.sessions:
        add("Sessions     no active session")
    else:
        add("Active sessions:")
        for s in ex.sessions:
            here = " (this IP)" if _same_ip(s.ip, ex.ip.address) else ""
            line = f"  {s.session_id}  ip {s.ip}{here}  logged in {_iso(s.logged_in_at)}"
            if s.open_alert_id is None:
                line += "  no open alert"
            else:
                same = (
                    "same fingerprint as above"
                    if ex.fingerprint is not None and s.open_alert_fingerprint == ex.fingerprint
                    else f"fingerprint {s.open_alert_fingerprint}"
                )
                line += f"  open alert {s.open_alert_id} ({same})"
            until = s.snoozed_until(ex.fingerprint) if ex.fingerprint is not None else None
            if until is not None:
                line += f"  snoozed until {_iso(until)} (the user dismissed this mismatch)"
            add(line)
    return "\n".join(lines)


# ---- the command --------------------------------------------------------------------

SQL = load_queries("explain.sql")


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


async def explain_command(
    settings: Settings, *, account: str, user: str, ip: str, as_json: bool
) -> int:
    """0 whenever it explained (any outcome), 2 for a bad --ip, 1 for a database error.

    A database error is raised as :class:`DatabaseError` for the CLI to print, so every
    command reports them the same way.
    """
    try:
        parsed = parse_input_ip(ip)
    except InvalidIp as exc:
        print(f"e911d explain: {exc}", file=sys.stderr)
        return EXIT_INVALID_IP
    pool = await connect_pool(
        PoolConfig(settings.postgres.dsn.get_secret_value(), 1, 1), attempts=5
    )
    try:
        async with pool.acquire() as conn:
            ex = await load_explanation(
                conn,
                account_id=account,
                user_id=user,
                ip=parsed,
                snooze=dt.timedelta(seconds=settings.checks.dismiss_snooze_seconds),
            )
    except asyncpg.UndefinedTableError as exc:
        raise DatabaseError(
            f"the e911d schema is missing ({exc}): run `e911d migrate`", transient=False
        ) from exc
    except (asyncpg.PostgresError, *TRANSIENT) as exc:
        raise DatabaseError(f"{type(exc).__name__}: {exc}", transient=False) from exc
    finally:
        await pool.close()
    print(render_json(ex) if as_json else render_text(ex))
    return EXIT_OK

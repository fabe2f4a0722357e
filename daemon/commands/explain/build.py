"""How a user on an IP gets an outcome, built from the database into plain values.

Support engineers answer "why did I get this alert?" with it, so it must never
disagree with the daemon: the outcome, the recommendation and the fingerprint come
from the daemon's own pure rules (:func:`daemon.core.evaluation.evaluate`) on the
:class:`~daemon.core.evaluation.AccountDirectory` that the checks' own loader
(:func:`daemon.store.directory.load_accounts`) builds, so the two cannot read or
build the directory differently.
Everything else (every containing IP group, why a group is ignored, the reasoning
behind the effective setting) is computed alongside to make the verdict readable;
what each network signal matched, the deciding one and the IP winner are taken
from the directory's own lookups (:meth:`AccountDirectory.signals`).

:func:`build_explanation` does no I/O so every branch is tested with literals;
:func:`load_explanation` loads the directory, reads what only explain shows (each
group's address entries as given, the sessions) and hands them to it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import asyncpg

from e911d.daemon.commands.explain.explanation import (
    ASSIGNED,
    DANGLING,
    NONE,
    UNKNOWN,
    ActiveSession,
    AssignedLocation,
    ContainingGroup,
    EffectiveSetting,
    Explanation,
    IpInput,
    SignalRow,
    StoredSession,
    Winner,
    on_off,
)
from e911d.daemon.commands.explain.sentence import sentence
from e911d.daemon.core.confirmed_network import KeyPrefixes, UserConfirmed
from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.ip import IPAddress, IPNetwork, parse_address_item
from e911d.daemon.core.model import (
    Account,
    ConfirmedNetwork,
    IpGroup,
    Location,
    MatchedBy,
    SignalMatch,
    User,
)
from e911d.daemon.core.network import NetworkSignals, format_bssid, format_chassis_id
from e911d.daemon.store.confirmed_networks import LearningConfig, user_entries
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.directory import load_accounts

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


def _assigned(user: User | None, locations: Mapping[str, Location]) -> AssignedLocation:
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


def _address_item(addresses: Sequence[str], network: IPNetwork) -> str | None:
    """The raw entry a network came from, so support can point at what to edit."""
    for item in addresses:
        try:
            if network in parse_address_item(item):
                return item
        except ValueError:
            continue
    return None


def _containing(
    ip: IPAddress,
    groups: Iterable[IpGroup],
    addresses: Mapping[str, Sequence[str]],
    locations: Mapping[str, Location],
    winning_groups: frozenset[str],
) -> tuple[ContainingGroup, ...]:
    found: list[ContainingGroup] = []
    for g in groups:
        nets = [n for n in g.networks if n.version == ip.version and ip in n]
        if not nets:
            continue
        best = max(nets, key=lambda n: n.prefixlen)
        loc = locations.get(g.location_id) if g.location_id is not None else None
        if not g.locating:
            ignored: str | None = None  # "this network tells nothing" needs no location
        elif g.location_id is None:
            ignored = "tied to no location: ignored by the rules"
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
                address_item=_address_item(addresses.get(g.ip_group_id, ()), best),
                counted=ignored is None,
                ignored_reason=ignored,
                winner=g.ip_group_id in winning_groups,
                locating=g.locating,
            )
        )
    found.sort(key=lambda c: (-c.prefix_len, c.ip_group_id))
    return tuple(found)


def _shown(signal: MatchedBy, text: str, network: NetworkSignals | None) -> str:
    """A signal's value or matched key as people read it (colon spelling for MACs)."""
    if not text or signal is MatchedBy.IP:
        return text
    if signal is MatchedBy.BSSID:
        return format_bssid(text)
    # A port or a switch is matched exactly: what matched is what the client sent.
    assert network is not None and network.chassis_id is not None  # noqa: S101  it was sent
    chassis = format_chassis_id(network.chassis_id)
    return f"{chassis} {network.port_id}" if signal is MatchedBy.SWITCH_PORT else chassis


def _signal_rows(
    directory: AccountDirectory, ip: IpInput, network: NetworkSignals | None
) -> tuple[tuple[SignalRow, ...], SignalMatch | None]:
    """Every presented signal with what it matched, and the IP's own hit."""
    rows: list[SignalRow] = []
    decided = False
    ip_hit = None
    for signal, value, hit in directory.signals(ip.address, network):
        first = hit is not None and not decided
        decided = decided or first
        if signal is MatchedBy.IP:
            ip_hit = hit
        rows.append(
            SignalRow(
                signal=signal,
                value=_shown(signal, value, network),
                key="" if hit is None else _shown(signal, hit.key, network),
                ip_group_ids=() if hit is None else hit.group_ids,
                locations=() if hit is None else directory.sorted_locations(hit.location_ids),
                locating=True if hit is None else hit.locating,
                decided=first,
            )
        )
    return tuple(rows), ip_hit


def build_explanation(
    *,
    user_id: str,
    ip: IpInput,
    account: Account | None,
    user: User | None,
    directory: AccountDirectory,
    ip_groups: Iterable[IpGroup],
    addresses: Mapping[str, Sequence[str]] | None = None,
    sessions: Iterable[ActiveSession] = (),
    network: NetworkSignals | None = None,
    geo: GeoCheck | None = None,
    confirmed: Sequence[ConfirmedNetwork] = (),
    prefixes: KeyPrefixes = KeyPrefixes(),  # noqa: B008  a frozen value
) -> Explanation:
    """The whole answer from plain values; no I/O, so every branch is unit-tested.

    ``confirmed``: the user's confirmed networks, as the checks read them.

    ``ip_groups``: every group ``directory`` was built from, the ignored ones included,
    so they can be listed; ``addresses``: each group's entries as given, to name the
    one a containing network came from.
    """
    # The checks have no snapshot for an unknown account; the lookup below still uses
    # the directory, so explain shows which networks would apply once the account exists.
    mine = (
        None if user is None else UserConfirmed(user.account_id, user.user_id, confirmed, prefixes)
    )
    verdict = evaluate(
        directory if account is not None else None,
        account,
        user,
        ip.address,
        network,
        geo,
        confirmed=mine,
    )
    rows, hit = _signal_rows(directory, ip, network)
    winner = None
    if hit is not None and hit.prefix_len is not None:
        net = ipaddress.ip_network((int(ip.address), hit.prefix_len), strict=False)
        winner = Winner(
            hit.prefix_len,
            net,
            hit.group_ids,
            directory.sorted_locations(hit.location_ids),
            hit.locating,
        )
    effective = _effective(account, user)
    assigned = _assigned(user, directory.locations)
    return Explanation(
        account_id=directory.account_id,
        account=account,
        user_id=user_id,
        user=user,
        effective=effective,
        assigned=assigned,
        ip=ip,
        containing_groups=_containing(
            ip.address,
            ip_groups,
            addresses or {},
            directory.locations,
            frozenset(hit.group_ids if hit else ()),
        ),
        winner=winner,
        verdict=verdict,
        sentence=sentence(account, assigned, winner, verdict, rows, network),
        sessions=tuple(sessions),
        network=network,
        signals=rows,
        confirmed=() if mine is None else mine.entries,
    )


async def load_explanation(
    conn: asyncpg.Connection,
    *,
    account_id: str,
    user_id: str,
    ip: IpInput,
    snooze: dt.timedelta = dt.timedelta(hours=1),
    network: NetworkSignals | None = None,
    geo: GeoCheck | None = None,
    learning: LearningConfig | None = None,
) -> Explanation:
    """Read everything in one read-only snapshot, then explain it (pure).

    ``geo``: the optional geolocation check, and ``learning`` the key widths and expiry
    of confirmed networks, as the daemon's checks are configured.
    """
    learning = learning or LearningConfig()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        a = await conn.fetchrow(SQL["account"], account_id)
        u = await conn.fetchrow(SQL["user"], account_id, user_id)
        (loaded,) = await load_accounts(conn, [account_id], {})
        address_rows = await conn.fetch(SQL["addresses"], account_id)
        session_rows = await conn.fetch(SQL["sessions"], account_id, user_id)
        now = await conn.fetchval("SELECT now()")
        confirmed = await user_entries(conn, account_id, user_id, now - learning.ttl)
        snoozes: dict[str, list[tuple[str, dt.datetime]]] = {}
        for r in await conn.fetch(SQL["snoozes"], account_id, user_id, snooze):
            snoozes.setdefault(r["session_id"], []).append(
                (r["fingerprint"], r["dismissed_at"] + snooze)
            )
    return build_explanation(
        user_id=user_id,
        ip=ip,
        account=None if a is None else Account(account_id, a["e911_recommendations"]),
        user=None
        if u is None
        else User(account_id, user_id, u["e911_recommendations"], u["e911_location_id"]),
        directory=loaded.directory,
        ip_groups=loaded.ip_groups,
        addresses={r["ip_group_id"]: tuple(r["addresses"]) for r in address_rows},
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
        network=network,
        geo=geo,
        confirmed=confirmed,
        prefixes=learning.prefixes,
    )


async def load_session(conn: asyncpg.Connection, session_id: str) -> StoredSession | None:
    """The account, user, IP and network a session last reported (None: no such one)."""
    r = await conn.fetchrow(SQL["session"], session_id)
    if r is None:
        return None
    signals = NetworkSignals(r["bssid"], r["switch_chassis"], r["switch_port"])
    return StoredSession(
        r["account_id"], r["user_id"], r["ip"], None if signals.empty else signals, r["ended"]
    )

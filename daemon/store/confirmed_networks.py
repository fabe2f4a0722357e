"""Networks a user confirmed, in PostgreSQL (docs/spec.md#networks-a-user-confirmed).

Learning runs inside ingest's batch transaction, with the directory change that
teaches it and the consumed offsets: a crash replays the batch and learns it once,
never twice and never not at all. The session is read as the batch leaves it and
the account's directory as the batch leaves it too (loaded here, uncached: a
snapshot of uncommitted rows must never reach the checks' cache).

Deleting a user, a location or an account deletes its entries through triggers
(migration 0006), whoever deletes; every change to an entry bumps the account's user
version and tells running instances, so no remembered decision outlives it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog

from e911d.daemon.core.confirmed_network import Confirmation, KeyPrefixes, learned_key
from e911d.daemon.core.events import DirectoryEvent, UserLocationChanged
from e911d.daemon.core.model import ConfirmedNetwork
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.directory import load_accounts
from e911d.daemon.store.session_record import session_address, session_network

log = structlog.get_logger(__name__)
SQL = load_queries("confirmed_networks.sql")
# Expiry deletes at most this many entries a statement (and loops): a bounded
# transaction however long the daemon was down.
EXPIRE_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """The ``learning`` settings a check and ingest need."""

    per_user: int = 20
    ttl: dt.timedelta = dt.timedelta(days=90)
    prefixes: KeyPrefixes = field(default_factory=KeyPrefixes)
    # A live session: one with an event within this long (the checks' session_ttl).
    session_ttl: dt.timedelta = dt.timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Learned:
    """One entry written by a batch, for the log line."""

    change: UserLocationChanged
    session_id: str
    key: NetworkKey


@dataclass(frozen=True, slots=True)
class Learning:
    """What a batch's in-app location changes taught: the entries written, and what
    became of each change (for ``e911_confirmations_total``)."""

    learned: list[Learned] = field(default_factory=list)
    results: Counter[Confirmation] = field(default_factory=Counter)


def entry_of(r: asyncpg.Record | Mapping[str, object]) -> ConfirmedNetwork | None:
    """A stored row as a value; a row of a kind this version does not know is skipped
    (it could never match a key it computes)."""
    try:
        kind = NetworkKeyKind(str(r["key_kind"]))
    except ValueError:
        return None
    return ConfirmedNetwork(
        str(r["account_id"]),
        str(r["user_id"]),
        NetworkKey(kind, str(r["network_key"])),
        str(r["location_id"]),
        r["first_confirmed_at"],  # type: ignore[arg-type]
        r["last_confirmed_at"],  # type: ignore[arg-type]
    )


def _when(event: DirectoryEvent, now: dt.datetime) -> dt.datetime:
    """When the user confirmed: the event's time, never later than now (a clock ahead
    must not keep an entry alive beyond its TTL)."""
    return now if event.time is None else min(event.time, now)


async def learn(
    conn: asyncpg.Connection,
    events: Sequence[DirectoryEvent],
    now: dt.datetime,
    config: LearningConfig,
) -> Learning:
    """Remember the networks the batch's in-app location changes were made from.

    Call after the batch's directory changes and sessions are written, in the same
    transaction. A change teaches only when: it was made in the app and names a
    location; its session is the named one (the user's own, live) or, with none
    named, the user's only live session; the user and the location still exist when
    the batch is done; and no group of the account decides that session's network.
    """
    changes = [
        (i, ev)
        for i, ev in enumerate(events)
        if isinstance(ev.change, UserLocationChanged)
        and ev.change.changed_via == "app"
        and ev.change.e911_location_id is not None
        and _when(ev, now) > now - config.ttl
    ]
    if not changes:
        return Learning()
    typed = [ev.change for _, ev in changes if isinstance(ev.change, UserLocationChanged)]
    cols = (
        [i for i, _ in changes],
        [c.account_id for c in typed],
        [c.user_id for c in typed],
        [c.session_id for c in typed],
    )
    sessions: dict[int, list[asyncpg.Record]] = {}
    for r in await conn.fetch(SQL["learning_sessions"], *cols, now - config.session_ttl):
        sessions.setdefault(r["idx"], []).append(r)
    users = {
        (r["account_id"], r["user_id"])
        for r in await conn.fetch(SQL["known_users"], cols[1], cols[2])
    }
    accounts = sorted({ev.change.account_id for _, ev in changes})
    loaded = await load_accounts(conn, accounts, {})
    directories = {d.directory.account_id: d.directory for d in loaded}
    rows: dict[tuple[str, str, NetworkKey], tuple[str, dt.datetime]] = {}
    learned: list[Learned] = []
    results: Counter[Confirmation] = Counter()
    for i, ev in changes:
        change = ev.change
        assert isinstance(change, UserLocationChanged)  # noqa: S101  filtered above
        found = sessions.get(i, [])
        reason = None
        directory = directories[change.account_id]
        if len(found) != 1:
            several = found and not change.session_id
            reason = Confirmation.SESSIONS_SEVERAL if several else Confirmation.SESSION_UNKNOWN
        elif (change.account_id, change.user_id) not in users:
            reason = Confirmation.USER_UNKNOWN
        elif change.e911_location_id not in directory.locations:
            reason = Confirmation.LOCATION_UNKNOWN
        if reason is not None:
            results[reason] += 1
            log.debug(
                "confirmed_network_not_learned",
                account_id=change.account_id,
                user_id=change.user_id,
                session_id=change.session_id,
                reason=str(reason),
            )
            continue
        s = found[0]
        ip = session_address(s)
        network = session_network(s)
        signals = None if network is None or network.empty else network
        key = learned_key(directory.locate(ip, signals), ip, signals, config.prefixes)
        if key is None:
            results[Confirmation.NETWORK_LOCATED] += 1
            log.debug(
                "confirmed_network_not_learned",
                account_id=change.account_id,
                user_id=change.user_id,
                session_id=s["session_id"],
                reason=str(Confirmation.NETWORK_LOCATED),
            )
            continue
        assert change.e911_location_id is not None  # noqa: S101  filtered above
        # The last confirmation of a key in the batch wins, as applying them in turn would.
        rows[(change.account_id, change.user_id, key)] = (change.e911_location_id, _when(ev, now))
        learned.append(Learned(change, s["session_id"], key))
        results[Confirmation.LEARNED] += 1
    if not rows:
        return Learning(learned, results)
    ordered = sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))
    await conn.execute(
        SQL["upsert_confirmed"],
        [a for (a, _, _), _ in ordered],
        [u for (_, u, _), _ in ordered],
        [str(k.kind) for (_, _, k), _ in ordered],
        [k.value for (_, _, k), _ in ordered],
        [loc for _, (loc, _) in ordered],
        [t for _, (_, t) in ordered],
    )
    owners = sorted({(a, u) for a, u, _ in rows})
    await conn.execute(
        SQL["cap_confirmed"], [a for a, _ in owners], [u for _, u in owners], config.per_user
    )
    for item in learned:
        log.info(
            "confirmed_network_learned",
            account_id=item.change.account_id,
            user_id=item.change.user_id,
            session_id=item.session_id,
            location_id=item.change.e911_location_id,
            key_kind=str(item.key.kind),
        )
    return Learning(learned, results)


async def expire(conn: asyncpg.Connection, cutoff: dt.datetime, limit: int = EXPIRE_ROWS) -> int:
    """Delete entries last confirmed at or before ``cutoff``; how many went."""
    total = 0
    while True:
        status = await conn.execute(SQL["expire_confirmed"], cutoff, limit)
        n = int(status.split()[-1])
        total += n
        if n < limit:
            return total


async def user_entries(
    conn: asyncpg.Connection, account_id: str, user_id: str, cutoff: dt.datetime
) -> tuple[ConfirmedNetwork, ...]:
    """One user's entries last confirmed after ``cutoff`` (for explain)."""
    rows = await conn.fetch(SQL["user_confirmed"], account_id, user_id, cutoff)
    return tuple(e for e in map(entry_of, rows) if e is not None)


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """An entry as ``e911d directory confirmed`` shows it."""

    entry: ConfirmedNetwork
    location_name: str | None


async def list_entries(
    conn: asyncpg.Connection, account_id: str | None, user_id: str | None, cutoff: dt.datetime
) -> list[ListedEntry]:
    """The entries of an account and/or a user (None: any) not expired at ``cutoff``."""
    out: list[ListedEntry] = []
    for r in await conn.fetch(SQL["list_confirmed"], account_id, user_id, cutoff):
        entry = entry_of(r)
        if entry is not None:
            out.append(ListedEntry(entry, r["location_name"]))
    return out


async def forget(conn: asyncpg.Connection, account_id: str, user_id: str | None) -> int:
    """Delete an account's entries, or one user's; how many went (expired ones too)."""
    rows = await conn.fetch(SQL["forget_confirmed"], account_id, user_id)
    for account, user in sorted({(r["account_id"], r["user_id"]) for r in rows}):
        log.info("confirmed_networks_forgotten", account_id=account, user_id=user)
    return len(rows)

"""`directory import --dry-run --impact` on a real PostgreSQL: the open alerts are raised
by the checks' own runner, the file re-maps networks, toggles, users and locations, and
the prediction is compared with what the checks really do once the file is imported.

Directory D0 of account acme (toggle on): hq, branch, home, lab; hq-net 10.1.0.0/16 ->
hq, branch-net 10.2.0.0/16 -> branch, lab-net 10.3.0.0/16 -> home, x-net 10.4.0.0/16
-> hq. Account globex (toggle off): plant; plant-net 10.9.0.0/16 -> plant.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import Any

import asyncpg
import pytest

from e911d.daemon.commands.directory_file.command import Imported, _import
from e911d.daemon.commands.directory_file.impact_run import ImpactOptions
from e911d.daemon.core.impact import AccountImpact
from e911d.daemon.core.model import ResolveReason
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import CheckConfig, CheckReport, CheckRunner
from e911d.daemon.store.db import PoolConfig, _init_connection
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.impact_rows import export_snapshot, use_snapshot

pytestmark = pytest.mark.integration

SNOOZE = dt.timedelta(minutes=60)
ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}


def _location(lid: str) -> dict[str, Any]:
    return {"location_id": lid, "name": lid.title(), "address": ADDRESS}


def _group(gid: str, net: str, location: str | None) -> dict[str, Any]:
    return {"ip_group_id": gid, "name": gid, "location_id": location, "addresses": [net]}


def _user(uid: str, on: bool, location: str | None) -> dict[str, Any]:
    return {"user_id": uid, "e911_recommendations": on, "e911_location_id": location}


D0: dict[str, Any] = {
    "accounts": [
        {
            "account_id": "acme",
            "e911_recommendations": True,
            "locations": [_location(x) for x in ("hq", "branch", "home", "lab")],
            "ip_groups": [
                _group("hq-net", "10.1.0.0/16", "hq"),
                _group("branch-net", "10.2.0.0/16", "branch"),
                _group("lab-net", "10.3.0.0/16", "home"),
                _group("x-net", "10.4.0.0/16", "hq"),
            ],
            "users": [
                _user("u-match", False, "hq"),
                _user("u-mis", False, "hq"),
                _user("u-sup", False, "hq"),
                _user("u-snz", False, "branch"),
                _user("u-twin", False, "branch"),
                _user("u-home", False, "home"),
            ],
        },
        {
            "account_id": "globex",
            "e911_recommendations": False,
            "locations": [_location("plant"), _location("office")],
            "ip_groups": [_group("plant-net", "10.9.0.0/16", "plant")],
            "users": [_user("g-off", False, "office"), _user("g-on", True, "office")],
        },
    ]
}

SESSIONS = [  # session, account, user, ip
    ("s-match", "acme", "u-match", "10.1.0.5"),  # match now
    ("s-mis", "acme", "u-mis", "10.2.0.5"),  # mismatch now (recommends branch)
    ("s-sup", "acme", "u-sup", "10.3.0.5"),  # mismatch now (recommends home)
    ("s-snz", "acme", "u-snz", "10.4.0.5"),  # mismatch under D0; dismissed, then matched
    ("s-twin", "acme", "u-twin", "10.4.0.6"),  # the same, not dismissed
    ("s-home", "acme", "u-home", "10.2.0.9"),  # mismatch (recommends branch)
    ("s-ghost", "acme", "ghost", "10.2.0.7"),  # unknown user
    ("s-goff", "globex", "g-off", "10.9.0.5"),  # disabled (user and account off)
    ("s-gon", "globex", "g-on", "10.9.0.6"),  # mismatch (recommends plant)
    ("s-other", "initech", "i1", "10.1.0.5"),  # an account the file does not name
]


def _with(doc: dict[str, Any], account: str, key: str, items: list[dict[str, Any]]) -> None:
    entry = next(a for a in doc["accounts"] if a["account_id"] == account)
    entry[key] = items


async def _connect(database: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database)
    await _init_connection(conn)
    return conn


async def _apply(conn: asyncpg.Connection, data: dict[str, Any], *, prune: bool = False) -> None:
    done = await _import(conn, data, dry_run=False, prune=prune)
    assert isinstance(done, Imported), done


async def _check_all(conn: asyncpg.Connection, now: dt.datetime) -> CheckReport:
    runner = CheckRunner(AlertStore("alerts", "urn:test"), DirectoryCache(), CheckConfig(SNOOZE))
    ids = [s[0] for s in SESSIONS]
    return await runner.check(conn, ids, now, screen=False)


async def _impact(
    conn: asyncpg.Connection,
    data: dict[str, Any],
    *,
    prune: bool = False,
    examples: int = 5,
    workers: int = 1,
    dsn: str | None = None,
) -> dict[str, AccountImpact]:
    options = ImpactOptions(
        now=dt.datetime.now(dt.UTC),
        snooze=SNOOZE,
        examples=examples,
        workers=workers,
        connect=None if dsn is None else PoolConfig(dsn, 1, 1),
    )
    done = await _import(conn, data, dry_run=True, prune=prune, impact=options)
    assert isinstance(done, Imported) and done.impact is not None, done
    return {a.account_id: a for a in done.impact}


@pytest.fixture
async def live(database: str) -> asyncpg.Connection:
    """D0 imported; every session checked (alerts raised); s-snz's alert dismissed;
    then x-net moved to branch (so s-snz and s-twin match) and checked again."""
    conn = await _connect(database)
    await _apply(conn, D0)
    now = dt.datetime.now(dt.UTC)
    await conn.executemany(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
        " last_event_at, kafka_partition) VALUES ($1, $2, $3, $4::inet, $5, $5, 0)",
        [(*s, now - dt.timedelta(minutes=30)) for s in SESSIONS],
    )
    await _check_all(conn, now)
    alert = await conn.fetchval(
        "SELECT alert_id FROM alerts WHERE session_id = 's-snz' AND resolved_at IS NULL"
    )
    assert alert is not None
    async with conn.transaction():
        await AlertStore("alerts", "urn:test").dismiss(conn, "s-snz", alert, now)
    d1 = copy.deepcopy(D0)
    groups = d1["accounts"][0]["ip_groups"]
    groups[3] = _group("x-net", "10.4.0.0/16", "branch")
    await _apply(conn, d1)
    await _check_all(conn, now)
    yield conn
    await conn.close()


def _file() -> dict[str, Any]:
    """Back to D0's x-net (s-snz's dismissed mismatch returns, s-twin's is new), and:
    hq-net -> branch (s-match mismatches), branch-net -> hq (s-mis matches, s-home
    mismatches with another recommendation), lab-net -> branch (s-sup superseded),
    ghost created (raised), globex: g-off turned on (raised), g-on turned off (resolved)."""
    doc = copy.deepcopy(D0)
    _with(
        doc,
        "acme",
        "ip_groups",
        [
            _group("hq-net", "10.1.0.0/16", "branch"),
            _group("branch-net", "10.2.0.0/16", "hq"),
            _group("lab-net", "10.3.0.0/16", "branch"),
            _group("x-net", "10.4.0.0/16", "hq"),
        ],
    )
    doc["accounts"][0]["users"].append(_user("ghost", True, "home"))
    _with(doc, "globex", "users", [_user("g-off", True, "office"), _user("g-on", False, "office")])
    return doc


async def test_the_impact_counts_each_change_the_import_makes_to_the_next_check(live):
    impact = await _impact(live, _file())
    assert set(impact) == {"acme", "globex"}  # initech is not in the file: not read
    acme, globex = impact["acme"], impact["globex"]
    assert acme.sessions == 7 and globex.sessions == 2
    # Every session was just checked: with the current directory nothing is pending.
    assert sum(acme.now.values()) == 0 and sum(globex.now.values()) == 0
    assert dict(acme.changed) == {"raised": 3, "superseded": 2, "resolved": 1, "averted": 0}
    assert dict(acme.resolved_by_reason) == {ResolveReason.LOCATION_MATCHED: 1}
    examples = {c: [e.session_id for e in es] for c, es in acme.examples.items()}
    assert examples == {
        "raised": ["s-ghost", "s-match", "s-twin"],  # s-snz: the same mismatch, snoozed
        "superseded": ["s-home", "s-sup"],
        "resolved": ["s-mis"],
    }
    match = acme.examples["raised"][1]
    assert (match.user_id, match.ip) == ("u-match", "10.1.0.5")
    assert (match.now.outcome, match.after.outcome, match.after.recommended) == (
        "match",
        "mismatch",
        ("branch",),
    )
    assert dict(globex.changed) == {"raised": 1, "superseded": 0, "resolved": 1, "averted": 0}
    assert dict(globex.resolved_by_reason) == {ResolveReason.RECOMMENDATIONS_DISABLED: 1}


async def test_the_prediction_is_what_the_checks_do_once_the_file_is_imported(live):
    impact = await _impact(live, _file())
    predicted = {
        (str(change), e.session_id, e.after.reason)
        for a in impact.values()
        for change, es in a.examples.items()
        for e in es
    }
    await _apply(live, _file())
    report = await _check_all(live, dt.datetime.now(dt.UTC))
    resolved = {r.session.session_id: r.reason for r in report.resolved}
    actual = set()
    for r in report.raised:
        sid = r.session.session_id
        if sid not in resolved:
            actual.add(("raised", sid, None))
    for sid, reason in resolved.items():
        kind = "superseded" if reason is ResolveReason.SUPERSEDED else "resolved"
        actual.add((kind, sid, str(reason)))
    assert predicted == actual
    assert "s-snz" not in {r.session.session_id for r in report.raised}  # snoozed


async def test_the_same_file_again_changes_nothing(live):
    impact = await _impact(live, copy.deepcopy(D0))
    # D0 differs from the database only in x-net (-> hq again): s-twin raised, s-snz snoozed.
    assert dict(impact["acme"].changed) == {
        "raised": 1,
        "superseded": 0,
        "resolved": 0,
        "averted": 0,
    }
    await _apply(live, _file())
    again = await _impact(live, _file())
    assert all(a.changed_sessions == 0 for a in again.values())
    # What is pending with the current directory is pending with the file's too.
    assert again["acme"].now == again["acme"].after and sum(again["acme"].now.values()) == 6


async def test_averted_when_the_file_undoes_what_the_next_check_would_do(live):
    # A directory change written behind the checks' back: hq-net -> home, not yet checked,
    # so s-match's next check would raise; a file putting hq-net back averts that.
    await live.execute("UPDATE ip_groups SET location_id = 'home' WHERE ip_group_id = 'hq-net'")
    impact = await _impact(live, copy.deepcopy(D0))
    acme = impact["acme"]
    assert acme.now["raise"] == 1
    assert acme.changed["averted"] == 1
    assert [e.session_id for e in acme.examples["averted"]] == ["s-match"]


async def test_prune_deleting_an_assigned_location_and_its_user(live):
    # --prune without home, u-home, lab-net: u-home's session ends up with an unknown user.
    doc = copy.deepcopy(D0)
    acme = doc["accounts"][0]
    acme["locations"] = [_location(x) for x in ("hq", "branch", "lab")]
    acme["ip_groups"] = [g for g in acme["ip_groups"] if g["location_id"] != "home"]
    acme["users"] = [u for u in acme["users"] if u["user_id"] != "u-home"]
    impact = await _impact(live, doc, prune=True)
    a = impact["acme"]
    # s-home resolved user_unknown; s-sup (on lab-net, now no group) keeps its mismatch
    # under all_locations: superseded; s-twin raised (x-net back to hq).
    assert dict(a.resolved_by_reason) == {ResolveReason.USER_UNKNOWN: 1}
    assert [e.session_id for e in a.examples["resolved"]] == ["s-home"]
    assert [e.session_id for e in a.examples["superseded"]] == ["s-sup"]
    sup = a.examples["superseded"][0]
    assert sup.after.recommended == ("branch", "hq", "lab")  # all_locations, by name


async def test_examples_are_capped_and_the_smallest_ids(live):
    impact = await _impact(live, _file(), examples=1)
    acme = impact["acme"]
    assert acme.changed["raised"] == 3
    assert [e.session_id for e in acme.examples["raised"]] == ["s-ghost"]


async def test_nothing_is_written_and_nothing_is_notified(live, database):
    tables = ("accounts", "users", "locations", "ip_groups", "ip_group_networks", "sessions")
    tables += ("alerts", "outbox", "directory_versions", "user_versions", "checked_sessions")

    async def state() -> list[tuple[str, str]]:
        rows = []
        for table in tables:
            sql = f"SELECT xmin::text AS x, t::text AS row FROM {table} t"  # noqa: S608
            rows += [(f"{table} {r['row']}", r["x"]) for r in await live.fetch(sql)]
        return sorted(rows)

    before = await state()
    assert any(name.startswith("outbox ") for name, _ in before)
    heard: list[str] = []
    listener = await asyncpg.connect(database)
    await listener.add_listener("e911_directory", lambda *a: heard.append(a[-1]))
    try:
        impact = await _impact(live, _file())
        assert impact["acme"].changed_sessions == 6
        assert await state() == before
        # Then a write that is heard: notices arrive in commit order, so any notice of
        # the impact would have come first.
        await live.execute("UPDATE locations SET name = 'Plant 2' WHERE location_id = 'plant'")
        await asyncio.wait_for(_until(lambda: bool(heard)), 10)
    finally:
        await listener.close()
    assert heard and all("globex" in payload for payload in heard), heard


async def _until(condition) -> None:
    while not condition():  # noqa: ASYNC110  a listener callback has no event to await
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("workers", [2, 3])
async def test_processes_in_one_snapshot_count_what_one_process_counts(live, database, workers):
    alone = await _impact(live, _file(), examples=2)
    split = await _impact(live, _file(), examples=2, workers=workers, dsn=database)
    assert split == alone
    assert sum(a.sessions for a in split.values()) == 9


async def test_another_connection_reads_the_exported_snapshot(live, database):
    other = await asyncpg.connect(database)
    try:
        async with live.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await export_snapshot(live)
            await other.execute(
                "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
                " last_event_at, kafka_partition) VALUES"
                " ('s-late', 'acme', 'u-match', '10.1.0.9', now(), now(), 0)"
            )
            async with other.transaction(isolation="repeatable_read", readonly=True):
                await use_snapshot(other, snapshot)
                seen = await other.fetchval("SELECT count(*) FROM sessions")
        assert seen == len(SESSIONS)  # not the session committed after the export
        assert await other.fetchval("SELECT count(*) FROM sessions") == len(SESSIONS) + 1
        with pytest.raises(ValueError, match="not a snapshot id"):
            await use_snapshot(other, "1'; DROP TABLE sessions; --")
    finally:
        await other.close()


async def test_a_process_that_cannot_connect_leaves_its_part_to_this_one(live, database):
    alone = await _impact(live, _file())
    base, _, query = database.partition("?")
    nowhere = base.rsplit("/", 1)[0] + "/no_such_database" + ("?" + query if query else "")
    split = await _impact(live, _file(), workers=2, dsn=nowhere)
    assert split == alone

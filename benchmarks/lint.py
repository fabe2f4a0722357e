"""``e911d directory lint`` on a large directory (the goal: "250,000 users and 5,000
groups in a few seconds").

``python -m benchmarks.lint [--accounts 50] [--groups 100] [--users 5000]`` builds a
directory of that size (per account: 50 locations, each with two groups; every group
a /24 CIDR, a range that expands to two CIDRs, an IPv6 /64, two BSSIDs of which one is
a pattern and a switch port; a few problems of every kind), then times:

- the pure rules alone (:func:`daemon.commands.lint.lint` on the validated model), and the
  import's validation alone (the baseline: what building the model costs);
- the command end to end on a JSON file and on a YAML file (read, parse, validate,
  lint, render JSON to a file);
- the command end to end on the database (a real PostgreSQL from pgserver, the
  directory written by the bulk projector), against the baseline ``directory export
  --format json`` of the same database (the same read and document, no validation).

The results table goes between the ``lint`` markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import scratch_database, write_section
from e911d.config import Settings, load_settings
from e911d.daemon.commands.directory_file import (
    DirectoryFile,
    export_command,
    files,
    load,
    render,
    validate,
)
from e911d.daemon.commands.embedded import EmbeddedPostgres
from e911d.daemon.commands.lint import lint
from e911d.daemon.commands.lint.command import lint_command
from e911d.daemon.store.db import PoolConfig, connect_pool, migrate
from e911d.daemon.store.directory_bulk import apply_changes

LOCATIONS = 50
ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}


def _account(a: int, groups: int, users: int) -> dict[str, Any]:
    """One account, sorted by ids as an export writes it (so both modes share paths)."""
    net = 16 + a % 16
    locations = [
        {"location_id": f"l{i:03d}", "name": f"Site {i}", "address": dict(ADDRESS)}
        for i in range(LOCATIONS)
    ]
    ip_groups: list[dict[str, Any]] = []
    for g in range(groups):
        hi, lo = divmod(g, 256)
        ip_groups.append(
            {
                "ip_group_id": f"g{g:04d}",
                "name": f"Group {g}",
                "location_id": f"l{g % LOCATIONS:03d}",
                "addresses": [
                    f"10.{hi}.{lo}.0/24",
                    f"172.{net}.{lo}.0-172.{net}.{lo}.191",  # a /25 and a /26
                    f"2001:db8:{hi:x}:{lo:x}::/64",
                ],
                "bssids": [f"f0:6e:0b:{hi:02x}:{lo:02x}:21", f"f0:6e:0b:{hi:02x}:{lo:02x}:3*"],
                "switches": [
                    {"chassis_id": f"00:1b:54:00:{hi:02x}:{lo:02x}", "port_id": "Gi1/0/1"}
                ],
            }
        )
    # A few problems of every kind: a network and a BSSID (in another spelling) in
    # groups of two locations, a non-locating group over a locating one's network, a
    # group without location, one naming a missing location, a location nothing
    # leads to; below, users assigned to a missing location and enabled without one.
    ip_groups[1]["addresses"].append(ip_groups[0]["addresses"][0])
    ip_groups[1]["bssids"].append(ip_groups[0]["bssids"][0].upper().replace(":", "-"))
    ip_groups += [
        {
            "ip_group_id": "vpn",
            "name": "VPN",
            "location_id": None,
            "addresses": ["10.0.5.0/24"],
            "locating": False,
        },
        {"ip_group_id": "x-gone", "name": "gone", "location_id": "gone", "addresses": []},
        {"ip_group_id": "x-none", "name": "none", "location_id": None, "addresses": []},
    ]
    locations.append({"location_id": "zz-unused", "name": "Unused", "address": dict(ADDRESS)})
    user_docs = []
    for u in range(users):
        location: str | None = f"l{u % LOCATIONS:03d}"
        if u % 1000 == 7:
            location = "attic"
        elif u % 100 == 1:
            location = None
        user_docs.append(
            {
                "user_id": f"u{u:06d}",
                "e911_recommendations": u % 3 == 0,
                "e911_location_id": location,
            }
        )
    return {
        "account_id": f"a{a:03d}",
        "e911_recommendations": a % 2 == 0,
        "locations": locations,
        "ip_groups": ip_groups,
        "users": user_docs,
    }


class _QuickDumper(yaml.CSafeDumper):
    """The bench's own YAML writer: the export's PyYAML emitter takes minutes here."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(doc: dict[str, Any]) -> str:
    text: str = yaml.dump(doc, Dumper=_QuickDumper, sort_keys=False, width=1 << 30)
    return text


def load_text_fast(text: str) -> object:
    return files.parse(text, "yaml")


def document(accounts: int, groups: int, users: int) -> dict[str, Any]:
    return {"accounts": [_account(a, groups, users) for a in range(accounts)]}


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """With the cyclic collector paused, as the command runs its own steps."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.disable()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        gc.enable()
    return best, result


async def _best_async(fn: Callable[[], Awaitable[object]], repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


async def _lint_to(settings: Settings, out: Path, file: Path | None) -> int:
    with out.open("w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        return await lint_command(settings, file=file, accounts=[], as_json=True)


async def _load_database(dsn: str, directory: DirectoryFile) -> None:
    pool = await connect_pool(PoolConfig(dsn, min_size=1, max_size=1))
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            async with conn.transaction():
                for entry in directory.accounts:
                    await apply_changes(
                        conn, [entry.account, *entry.locations, *entry.ip_groups, *entry.users]
                    )
    finally:
        await pool.close()


async def _measure(
    args: argparse.Namespace, work: Path
) -> tuple[list[tuple[str, float, str]], str]:
    doc = document(args.accounts, args.groups, args.users)
    as_json = work / "directory.json"
    as_json.write_text(render(doc, "json"), "utf-8")
    as_yaml = work / "directory.yaml"
    as_yaml.write_text(_yaml(doc), "utf-8")
    out = work / "out.json"
    rows: list[tuple[str, float, str]] = []

    parse_s, data = _best(lambda: load(as_json), args.repeat)
    validate_s, checked = _best(lambda: validate(data, check_references=False), args.repeat)
    assert checked.directory is not None  # type: ignore[attr-defined]
    directory: DirectoryFile = checked.directory  # type: ignore[attr-defined]
    rules_s, findings = _best(lambda: lint(directory), args.repeat)
    n_findings = len(findings)  # type: ignore[arg-type]
    rows.append(("the rules alone (`lint` on the validated model)", rules_s, "ours"))
    rows.append(("JSON parse alone (`load`)", parse_s, "baseline"))
    rows.append(("the import's validation alone (`validate`)", validate_s, "baseline"))

    settings = load_settings(environ={})
    json_s, code = await _best_async(lambda: _lint_to(settings, out, as_json), args.repeat)
    assert len(json.loads(out.read_text("utf-8"))["findings"]) == n_findings
    rows.append(("`directory lint --file directory.json --json`", json_s, "ours"))
    yaml_s, _ = await _best_async(lambda: _lint_to(settings, out, as_yaml), args.repeat)
    assert len(json.loads(out.read_text("utf-8"))["findings"]) == n_findings
    rows.append(("`directory lint --file directory.yaml --json`", yaml_s, "ours"))
    fast_s, fast = _best(lambda: load(as_yaml), 1)
    rows.append(("YAML parse alone, libyaml reader (now)", fast_s, "ours"))
    # The pure-Python reader (every YAML file before this benchmark) reads about
    # 0.2 MB/s: timed on a slice of the accounts and scaled to the whole file.
    part = {"accounts": doc["accounts"][: args.pure_accounts]}
    text = _yaml(part)
    pure_s, slow = _best(lambda: yaml.load(text, Loader=files._Loader), 1)  # noqa: S506
    assert slow == load_text_fast(text)
    scale = as_yaml.stat().st_size / len(text.encode("utf-8"))
    rows.append(
        (
            f"YAML parse alone, pure-Python reader (before; {args.pure_accounts} accounts "
            f"timed, scaled x{scale:.1f})",
            pure_s * scale,
            "baseline",
        )
    )
    del fast

    pg = EmbeddedPostgres().start()
    try:
        async with scratch_database(pg.dsn) as dsn:
            await _load_database(dsn, directory)
            db_settings = load_settings(environ={"E911_POSTGRES__DSN": dsn})
            db_s, _ = await _best_async(lambda: _lint_to(db_settings, out, None), args.repeat)
            assert len(json.loads(out.read_text("utf-8"))["findings"]) == n_findings
            rows.append(("`directory lint --json` (database)", db_s, "ours"))
            exported = work / "export.json"
            export_s, _ = await _best_async(
                lambda: export_command(db_settings, accounts=[], fmt="json", output=exported),
                args.repeat,
            )
            rows.append(("`directory export --format json` (database)", export_s, "baseline"))
    finally:
        pg.stop()
    size = (
        f"{args.accounts} accounts; {args.accounts * args.groups:,} groups + "
        f"{args.accounts * 3} odd ones; {args.accounts * args.users:,} users; "
        f"{args.accounts * (LOCATIONS + 1):,} locations; exit {code}, {n_findings:,} findings; "
        f"files: JSON {_mb(as_json)}, YAML {_mb(as_yaml)}"
    )
    return rows, size


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.0f} MB"


def table(rows: Sequence[tuple[str, float, str]], size: str, repeat: int) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"- date: {when}; command: `python -m benchmarks.lint`; best of {repeat} "
        "(YAML parse alone: one run)",
        f"- CPUs: {os.cpu_count()}, Python {platform.python_version()} on {platform.machine()}; "
        "PostgreSQL 16 (pgserver) on this machine",
        f"- directory: {size}",
        "",
        "| what | kind | seconds |",
        "| --- | --- | --: |",
        *(f"| {name} | {kind} | {secs:.2f} |" for name, secs, kind in rows),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--groups", type=int, default=100, help="per account (at most 65,536)")
    parser.add_argument("--users", type=int, default=5_000, help="per account")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--pure-accounts", type=int, default=2, help="accounts the pure YAML reader is timed on"
    )
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="e911d-lint-bench-") as work:
        rows, size = asyncio.run(_measure(args, Path(work)))
    text = table(rows, size, args.repeat)
    print(text)
    if not args.no_readme:
        write_section("lint", text)


if __name__ == "__main__":
    main()

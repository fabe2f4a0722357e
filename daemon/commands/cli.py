"""The ``e911d`` console script."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from e911d import __version__
from e911d.config import ConfigError, Settings, load_settings, masked_settings
from e911d.config.secret_settings import FILE_SUFFIX
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.runtime.collector import tune_collector
from e911d.daemon.runtime.logs import configure_logging, redaction_key
from e911d.daemon.runtime.stop_signals import capture_signals
from e911d.daemon.store.db import DatabaseError, PoolConfig, errors, migrate, open_pool

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="e911d",
        description="Keeps hybrid workers' E911 locations honest (see README.md).",
    )
    parser.add_argument("--version", action="version", version=f"e911d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, help="TOML file; environment variables win")
        return p

    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    with_config(sub.add_parser("migrate", help="apply database migrations and exit"))
    cfg = with_config(sub.add_parser("config", help="print the effective configuration"))
    cfg.add_argument("--json", action="store_true", help="JSON instead of TOML-like text")
    directory = sub.add_parser(
        "directory", help="import, export or lint the directory; confirmed networks"
    )
    dir_sub = directory.add_subparsers(dest="directory_command", required=True)
    imp = with_config(dir_sub.add_parser("import", help="load a YAML or JSON directory file"))
    imp.add_argument("file", type=Path, help="YAML (.yaml/.yml) or JSON (.json) file")
    imp.add_argument(
        "--dry-run", action="store_true", help="validate and print what would change; write nothing"
    )
    imp.add_argument(
        "--prune",
        action="store_true",
        help="also delete what the file's accounts hold in the database but the file omits",
    )
    imp.add_argument(
        "--impact",
        action="store_true",
        help="with --dry-run: per account, the alerts the live sessions' next checks would "
        "raise, resolve and supersede because of this file",
    )
    imp.add_argument("--json", action="store_true", help="with --impact: plan and impact as JSON")
    exp = with_config(dir_sub.add_parser("export", help="write the directory as a file"))
    exp.add_argument(
        "--account", action="append", default=[], help="only this account (repeatable)"
    )
    exp.add_argument("--format", choices=("yaml", "json"), default="yaml")
    exp.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    lint = with_config(
        dir_sub.add_parser("lint", help="find what keeps the directory from locating users")
    )
    lint.add_argument(
        "--account", action="append", default=[], help="only this account (repeatable)"
    )
    lint.add_argument("--json", action="store_true", help="machine-readable output")
    lint.add_argument("--file", type=Path, help="lint this directory file instead of the database")
    from e911d.daemon.commands.confirmed import id_argument

    confirmed = with_config(
        dir_sub.add_parser(
            "confirmed", help="list (or forget) the networks users confirmed a location on"
        )
    )
    confirmed.add_argument("--account", type=id_argument, help="only this account")
    confirmed.add_argument("--user", type=id_argument, help="only this user (needs --account)")
    confirmed.add_argument(
        "--forget", action="store_true", help="delete the selected entries (needs --account)"
    )
    confirmed.add_argument("--json", action="store_true", help="machine-readable output")
    explain = with_config(
        sub.add_parser("explain", help="why a user on an IP gets which outcome, from the database")
    )
    explain.add_argument("--account", help="account_id (required unless --session)")
    explain.add_argument("--user", help="user_id (required unless --session)")
    explain.add_argument("--ip", help="the session's IP address (required unless --session)")
    explain.add_argument("--bssid", help="the Wi-Fi access point's BSSID, any MAC spelling")
    explain.add_argument("--switch-chassis", help="the LLDP chassis id of the client's switch")
    explain.add_argument("--switch-port", help="the LLDP port id (needs --switch-chassis)")
    explain.add_argument(
        "--session", help="explain a stored session: its account, user, IP and network"
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    from e911d.daemon.commands.report.command import since_argument, top_argument

    report = with_config(
        sub.add_parser(
            "report",
            help="per account: alerts raised, fixed, dismissed, from the alert history",
        )
    )
    report.add_argument(
        "--account", action="append", default=[], help="only this account (repeatable)"
    )
    report.add_argument(
        "--since",
        type=since_argument,
        default="7d",
        help="window ending now: 7d, 24h, 90m, 3600s, 2w, 1d12h (default 7d)",
    )
    report.add_argument("--format", choices=("text", "json", "csv"), default="text")
    report.add_argument(
        "--top", type=top_argument, default=5, help="groups listed per account (default 5)"
    )
    _networks_parser(report, since_argument)
    contracts = sub.add_parser(
        "contracts", help="write the event contracts (JSON Schemas, AsyncAPI) under docs/"
    )
    contracts.add_argument("--root", type=Path, default=Path("."), help="repository root")
    contracts.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    dev = sub.add_parser("dev", help="everything on one machine: broker, database, demo, daemon")
    dev.add_argument("--initial-delay", type=float, default=10.0, help="seconds (default 10)")
    dev.add_argument("--interval", type=float, default=5.0, help="seconds (default 5)")
    dev.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    dev.add_argument("--http-port", type=int, default=9911)
    dev.add_argument("--seed", type=int, default=911, help="simulation random seed")
    return parser


def _networks_parser(
    report: argparse.ArgumentParser, since_argument: Callable[[str], object]
) -> None:
    """``e911d report networks``: its own dests, so that the parent's defaults for the
    same options never overwrite what was given after ``networks``."""
    from e911d.daemon.commands.networks.command import FORMATS, min_users_argument

    sub = report.add_subparsers(dest="report_command")
    networks = sub.add_parser(
        "networks", help="networks nobody configured, busiest first, with what users confirmed"
    )
    # Not the parent's default: a --config given before ``networks`` must stay.
    networks.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="TOML file; environment wins"
    )
    networks.add_argument(
        "--account",
        dest="networks_account",
        metavar="A",
        action="append",
        default=[],
        help="only this account (repeatable)",
    )
    networks.add_argument(
        "--since",
        dest="networks_since",
        metavar="DURATION",
        type=since_argument,
        default="7d",
        help="UTC days from this long ago to today: 7d, 24h, 2w, 1d12h (default 7d)",
    )
    networks.add_argument(
        "--min-users",
        metavar="N",
        type=min_users_argument,
        default=1,
        help="only networks with at least this many users on one day (default 1)",
    )
    networks.add_argument(
        "--format",
        dest="networks_format",
        choices=FORMATS,
        default="text",
        help="directory: the suggested IP groups as a file for `e911d directory import`",
    )


def _refuse_report_options_before_networks(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    """``e911d report --account A networks`` would parse ``--account`` as the plain
    report's and list every account: a usage error (exit 2) rather than a wrong list."""
    given = [
        option
        for option, value, default in (
            ("--account", args.account, []),
            ("--since", args.since, dt.timedelta(days=7)),
            ("--format", args.format, "text"),
            ("--top", args.top, 5),
        )
        if value != default
    ]
    if given:
        parser.error(f"argument {given[0]}: give the options of `report networks` after `networks`")


async def _run(settings: Settings) -> int:
    from e911d.daemon.runtime.app import App

    app = App(settings)
    with capture_signals(app.request_stop):
        return await app.run()


async def _migrate(settings: Settings) -> int:
    config = PoolConfig(settings.postgres.dsn.get_secret_value(), 1, 1)
    async with open_pool(config, backoff=BRIEF) as pool, pool.acquire() as conn:
        with errors("migrate"):
            applied = await migrate(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")
    return EXIT_OK


def _print_config(settings: Settings, as_json: bool) -> None:
    data = masked_settings(settings)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return

    def emit(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            scalars = {k: v for k, v in value.items() if not isinstance(v, dict)}
            tables = {k: v for k, v in value.items() if isinstance(v, dict)}
            if prefix and scalars:
                print(f"[{prefix}]")
            for k, v in scalars.items():
                # TOML has no null: an unset optional key is shown as a comment.
                line = f"# {k} is unset" if v is None else f"{k} = {json.dumps(v)}"
                if v is not None and k.endswith(FILE_SUFFIX) and k[: -len(FILE_SUFFIX)] in scalars:
                    line += f"  # {k[: -len(FILE_SUFFIX)]} (masked above) was read from this file"
                print(line)
            if scalars:
                print()
            for k, v in tables.items():
                emit(f"{prefix}.{k}" if prefix else k, v)

    emit("", data)


def _import_refusal(args: argparse.Namespace) -> str | None:
    """Option combinations ``directory import`` refuses (exit 2) before reading anything."""
    if args.impact and not args.dry_run:
        return (
            "--impact needs --dry-run: the impact is reported instead of importing "
            "(review it, then run the import without --dry-run and --impact)"
        )
    if args.json and not args.impact:
        return "--json needs --impact (--dry-run --impact --json)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "report" and args.report_command == "networks":
        _refuse_report_options_before_networks(parser, args)
    try:
        if args.command == "dev":
            from e911d.daemon.commands.dev import DevOptions, run_dev

            return run_dev(
                DevOptions(
                    initial_delay=args.initial_delay,
                    interval=args.interval,
                    duration=args.duration,
                    http_port=args.http_port,
                    seed=args.seed,
                )
            )
        if args.command == "contracts":
            from e911d.daemon.commands import contracts

            return contracts.run(args.root, check=args.check)
        overrides: dict[str, object] = {}
        if args.command == "run" and args.no_migrate:
            overrides["migrate_on_start"] = False
        settings = load_settings(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"e911d: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log.format, settings.log.level, redact=redaction_key(settings.log))
    try:
        if args.command == "config":
            _print_config(settings, args.json)
            return EXIT_OK
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "run":
            tune_collector()
            return asyncio.run(_run(settings))
        if args.command == "directory":
            from e911d.daemon.commands import directory_file

            if args.directory_command == "lint":
                from e911d.daemon.commands.lint.command import lint_command

                return asyncio.run(
                    lint_command(settings, file=args.file, accounts=args.account, as_json=args.json)
                )
            if args.directory_command == "confirmed":
                from e911d.daemon.commands.confirmed import confirmed_command

                return asyncio.run(
                    confirmed_command(
                        settings,
                        account_id=args.account,
                        user_id=args.user,
                        do_forget=args.forget,
                        as_json=args.json,
                    )
                )
            if args.directory_command == "import":
                refused = _import_refusal(args)
                if refused is not None:
                    print(f"e911d directory import: {refused}", file=sys.stderr)
                    return EXIT_CONFIG
                return asyncio.run(
                    directory_file.import_command(
                        settings,
                        args.file,
                        dry_run=args.dry_run,
                        prune=args.prune,
                        impact=args.impact,
                        as_json=args.json,
                    )
                )
            return asyncio.run(
                directory_file.export_command(
                    settings, accounts=args.account, fmt=args.format, output=args.output
                )
            )
        if args.command == "explain":
            from e911d.daemon.commands import explain

            typed = explain.ExplainArgs(
                args.account,
                args.user,
                args.ip,
                args.bssid,
                args.switch_chassis,
                args.switch_port,
                args.session,
            )
            return asyncio.run(explain.explain_command(settings, typed, as_json=args.json))
        if args.command == "report" and args.report_command == "networks":
            from e911d.daemon.commands.networks import networks_command

            return asyncio.run(
                networks_command(
                    settings,
                    accounts=args.networks_account,
                    since=args.networks_since,
                    min_users=args.min_users,
                    fmt=args.networks_format,
                )
            )
        if args.command == "report":
            from e911d.daemon.commands.report import report_command

            return asyncio.run(
                report_command(
                    settings, accounts=args.account, since=args.since, fmt=args.format, top=args.top
                )
            )
    except DatabaseError as exc:
        print(f"e911d: database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):
        # A second Ctrl-C cancels the run: its components were closed on the way out.
        return EXIT_OK
    except BrokenPipeError:  # e.g. `e911d config | head`
        sys.stderr.close()
        return EXIT_OK
    raise AssertionError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())

"""The ``e911d explain`` command: parse the input, read the database, print the answer.

It is the only place that joins building and rendering, so each half stays usable
(and tested) alone. A database error is not turned into an exit code here: it goes
up to the CLI, which reports it the same way for every command.

Every command package has a ``command.py`` (the entry its CLI parser calls) beside
the parts it owns: the same kind of module in parallel places, so the same name.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass

import asyncpg

from e911d.config import Settings
from e911d.daemon.commands.explain.build import load_explanation, load_session
from e911d.daemon.commands.explain.explanation import (
    Explanation,
    InvalidIp,
    InvalidNetwork,
    IpInput,
    parse_input_ip,
    parse_input_network,
)
from e911d.daemon.commands.explain.render import render_json, render_text
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.runtime.geoip import GeoIpError, open_geoip
from e911d.daemon.services.deps import learning_config
from e911d.daemon.store.confirmed_networks import LearningConfig
from e911d.daemon.store.db import DatabaseError, PoolConfig, errors, open_pool

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_IP = 2  # any input the command refuses: a bad --ip, MAC, or an unknown session


@dataclass(frozen=True, slots=True)
class ExplainArgs:
    """What was typed: either --account, --user and --ip (and optionally the network
    signals), or --session alone."""

    account: str | None = None
    user: str | None = None
    ip: str | None = None
    bssid: str | None = None
    switch_chassis: str | None = None
    switch_port: str | None = None
    session: str | None = None


class _Refused(Exception):
    """Input the command refuses (exit 2), with the message to print."""


def _check(args: ExplainArgs) -> tuple[IpInput | None, NetworkSignals | None]:
    """Everything that can be refused without the database, so a typo gives exit 2
    even when the database is away."""
    typed = (args.account, args.user, args.ip, args.bssid, args.switch_chassis, args.switch_port)
    if args.session is not None:
        if any(v is not None for v in typed):
            raise _Refused(
                "--session takes the account, user, IP and network from the stored "
                "session: give it alone"
            )
        return None, None
    missing = [
        flag
        for flag, v in (("--account", args.account), ("--user", args.user), ("--ip", args.ip))
        if v is None
    ]
    if missing:
        raise _Refused(f"{', '.join(missing)} required (or --session SESSION_ID)")
    assert args.ip is not None  # noqa: S101  checked above
    try:
        return parse_input_ip(args.ip), parse_input_network(
            args.bssid, args.switch_chassis, args.switch_port
        )
    except (InvalidIp, InvalidNetwork) as exc:
        raise _Refused(str(exc)) from None


async def _explain(
    conn: asyncpg.Connection,
    args: ExplainArgs,
    ip: IpInput | None,
    network: NetworkSignals | None,
    snooze: dt.timedelta,
    geo: GeoCheck | None,
    learning: LearningConfig,
) -> Explanation:
    account, user = args.account, args.user
    if args.session is not None:
        stored = await load_session(conn, args.session)
        if stored is None:
            raise _Refused(f"--session {args.session[:80]!r}: no such session in the database")
        try:
            ip = parse_input_ip(stored.ip)
        except InvalidIp as exc:  # cannot happen for a stored inet; refuse rather than guess
            raise _Refused(str(exc)) from None
        account, user, network = stored.account_id, stored.user_id, stored.network
        if stored.ended:
            print(
                f"e911d explain: session {args.session[:80]!r} has ended; explaining the IP "
                "and network it last reported",
                file=sys.stderr,
            )
    assert account is not None and user is not None and ip is not None  # noqa: S101  by _check
    return await load_explanation(
        conn,
        account_id=account,
        user_id=user,
        ip=ip,
        snooze=snooze,
        network=network,
        geo=geo,
        learning=learning,
    )


async def explain_command(settings: Settings, args: ExplainArgs, *, as_json: bool) -> int:
    """0 whenever it explained (any outcome), 2 for refused input, 1 for a database error
    or an unusable GeoIP database.

    With a GeoIP database configured, explain geolocates as the daemon does, so the two
    never disagree. A database error is raised as :class:`DatabaseError` for the CLI to
    print, so every command reports them the same way.
    """
    try:
        with open_geoip(settings.geoip) as geo:
            return await explain_with(settings, args, as_json=as_json, geo=geo)
    except GeoIpError as exc:
        print(f"e911d explain: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def explain_with(
    settings: Settings, args: ExplainArgs, *, as_json: bool, geo: GeoCheck | None
) -> int:
    try:
        ip, network = _check(args)
    except _Refused as exc:
        print(f"e911d explain: {exc}", file=sys.stderr)
        return EXIT_INVALID_IP
    config = PoolConfig(settings.postgres.dsn.get_secret_value(), 1, 1)
    snooze = dt.timedelta(seconds=settings.checks.dismiss_snooze_seconds)
    async with open_pool(config, backoff=BRIEF) as pool:
        try:
            with errors("explain"):
                async with pool.acquire() as conn:
                    ex = await _explain(
                        conn, args, ip, network, snooze, geo, learning_config(settings)
                    )
        except _Refused as exc:
            print(f"e911d explain: {exc}", file=sys.stderr)
            return EXIT_INVALID_IP
        except DatabaseError as exc:
            if isinstance(exc.__cause__, asyncpg.UndefinedTableError):
                raise DatabaseError(
                    f"the e911d schema is missing ({exc.__cause__}): run `e911d migrate`",
                    transient=False,
                ) from exc
            raise
    print(render_json(ex) if as_json else render_text(ex))
    return EXIT_OK

"""The pure decision with network signals against the IP-only path.

``python -m benchmarks.signals [--evaluations 200000]`` builds one account's snapshot
(500 locations; 5,000 groups, each with a /24, four BSSIDs of which one is a
wildcard pattern, and a switch port; 100 non-locating VPN groups) and times
``evaluate`` for each way a session can be located, each a match of the user's
assigned location (the common case: a mismatch also builds its recommendation),
but the VPN's (undetermined). The baseline is the path every
check took before signals existed: a session that reports no network, located by
its IP. No database, no broker: this is the CPU cost a check adds, per check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.harness import write_section
from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.model import Account, IpGroup, Location, User
from e911d.daemon.core.network import NetworkSignals, SwitchRef

LOCATIONS = 500
GROUPS = 5_000
VPN_GROUPS = 100


def _mac(n: int) -> str:
    return f"{n:012x}"


def directory(with_signals: bool) -> AccountDirectory:
    locations = [Location(f"l{i}", f"Location {i:03d}") for i in range(LOCATIONS)]
    groups = []
    for g in range(GROUPS):
        net = ipaddress.ip_network(((10 << 24) + (g << 8), 24))
        exact = (_mac(0xF06E00000000 + g * 16), _mac(0xF06E00000000 + g * 16 + 1))
        more = (_mac(0xA00000000000 + g * 16)[:11] + "*", _mac(0xB00000000000 + g))
        bssids = (*exact, *more) if with_signals else ()
        switches = (SwitchRef(_mac(0x001B54000000 + g), "gi1/0/12"),) if with_signals else ()
        groups.append(IpGroup(f"g{g}", f"G{g}", f"l{g % LOCATIONS}", (net,), bssids, switches))
    for v in range(VPN_GROUPS):
        net = ipaddress.ip_network(((192 << 24) + (v << 8), 24))
        groups.append(IpGroup(f"vpn{v}", f"VPN {v}", None, (net,), locating=False))
    return AccountDirectory("acme", locations, groups)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    ip: str
    network: NetworkSignals | None


CASES: Sequence[Case] = (
    Case("baseline: no network, the IP decides", "10.0.40.9", None),
    Case("BSSID (exact) decides", "10.0.40.9", NetworkSignals(_mac(0xF06E00000000 + 40 * 16))),
    Case("BSSID pattern decides", "10.0.40.9", NetworkSignals(_mac(0xA00000000000 + 40 * 16 + 7))),
    Case(
        "switch port decides",
        "10.0.40.9",
        NetworkSignals(None, _mac(0x001B54000000 + 40), "gi1/0/12"),
    ),
    Case(
        "BSSID and switch unknown, the IP decides",
        "10.0.40.9",
        NetworkSignals(_mac(0xCC0000000000), _mac(0xDD0000000000), "gi1/0/1"),
    ),
    Case("non-locating VPN decides", "192.0.3.5", None),
)


def _time(d: AccountDirectory, case: Case, n: int) -> float:
    account, user = Account("acme", True), User("acme", "u", True, "l40")
    ip = ipaddress.ip_address(case.ip)
    evaluate(d, account, user, ip, case.network)  # warm
    start = time.perf_counter()
    for _ in range(n):
        evaluate(d, account, user, ip, case.network)
    return time.perf_counter() - start


def run(evaluations: int) -> str:
    built = {}
    for label, signals in (("IP only", False), ("with signals", True)):
        start = time.perf_counter()
        d = directory(signals)
        built[label] = (time.perf_counter() - start, d)
    plain, full = built["IP only"][1], built["with signals"][1]
    rows = [
        "| case | directory | evaluations/s | µs/evaluation | vs baseline |",
        "| --- | --- | --: | --: | --: |",
    ]
    base = _time(plain, CASES[0], evaluations)
    rows.append(
        f"| {CASES[0].name} | IP only | {evaluations / base:,.0f} "
        f"| {1e6 * base / evaluations:.2f} | 1.00 |"
    )
    for case in CASES:
        seconds = _time(full, case, evaluations)
        rows.append(
            f"| {case.name} | with signals | {evaluations / seconds:,.0f} "
            f"| {1e6 * seconds / evaluations:.2f} | {seconds / base:.2f} |"
        )
    build = (
        f"Snapshot build ({GROUPS:,} groups + {VPN_GROUPS} VPN groups, {LOCATIONS} locations): "
        f"IP only {1000 * built['IP only'][0]:.0f} ms, "
        f"with signals {1000 * built['with signals'][0]:.0f} ms."
    )
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"- date: {when}; command: `python -m benchmarks.signals`\n"
        f"- CPUs: {os.cpu_count()}, Python {platform.python_version()} on {platform.machine()}; "
        f"{evaluations:,} evaluations per case, one thread"
    )
    return head + "\n\n" + "\n".join(rows) + "\n\n" + build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluations", type=int, default=200_000)
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args()
    text = run(args.evaluations)
    print(text)
    if not args.no_readme:
        write_section("signals", text)


if __name__ == "__main__":
    main()

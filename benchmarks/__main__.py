"""``python -m benchmarks``: run every benchmark and rewrite the README results section.

``--quick`` is a smoke run on small sizes; it prints the table but leaves the README
alone unless ``--write-readme`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import apscheduler

from benchmarks import schedule
from benchmarks.schedule import Result

README = Path(__file__).with_name("README.md")
START = "<!-- results:start -->"
END = "<!-- results:end -->"

DEFAULT_SESSIONS = 1_000_000
DEFAULT_APSCHEDULER_SESSIONS = 200_000
QUICK_SESSIONS = 20_000
QUICK_APSCHEDULER_SESSIONS = 5_000
DEFAULT_SEED = 911
DEFAULT_REPEAT = 3


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument(
        "--sessions",
        type=int,
        default=None,
        help=f"sessions for the heap candidates (default {DEFAULT_SESSIONS:,}, "
        f"--quick {QUICK_SESSIONS:,})",
    )
    p.add_argument(
        "--apscheduler-sessions",
        type=int,
        default=None,
        help="sessions for the APScheduler baseline (default "
        f"min(--sessions, {DEFAULT_APSCHEDULER_SESSIONS:,}), "
        f"--quick {QUICK_APSCHEDULER_SESSIONS:,})",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"timing passes for the heap candidates, best kept (default {DEFAULT_REPEAT}, "
        "--quick 1)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="input seed")
    readme = p.add_mutually_exclusive_group()
    readme.add_argument(
        "--write-readme",
        dest="write_readme",
        action="store_true",
        default=None,
        help="rewrite the README results (default unless --quick)",
    )
    readme.add_argument(
        "--no-write-readme",
        dest="write_readme",
        action="store_false",
        help="only print the table",
    )
    args = p.parse_args(argv)
    if args.sessions is None:
        args.sessions = QUICK_SESSIONS if args.quick else DEFAULT_SESSIONS
    if args.apscheduler_sessions is None:
        cap = QUICK_APSCHEDULER_SESSIONS if args.quick else DEFAULT_APSCHEDULER_SESSIONS
        args.apscheduler_sessions = min(args.sessions, cap)
    if args.repeat is None:
        args.repeat = 1 if args.quick else DEFAULT_REPEAT
    if args.sessions <= 0 or args.apscheduler_sessions <= 0 or args.repeat <= 0:
        p.error("--sessions, --apscheduler-sessions and --repeat must be positive")
    if args.write_readme is None:
        args.write_readme = not args.quick
    return args


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(results: Sequence[Result]) -> str:
    header = (
        "| candidate | sessions | add time (s) | adds/s | bytes/session "
        "| drain time (s) | drains/s | notes |"
    )
    lines = [header, "|---|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        notes = "; ".join(r.notes).replace("|", "\\|")
        lines.append(
            f"| {r.candidate} | {r.sessions:,} | {_secs(r.add_s)} | {_num(r.adds_per_s)} "
            f"| {_num(r.bytes_per_session)} | {_secs(r.drain_s)} | {_num(r.drains_per_s)} "
            f"| {notes} |"
        )
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(started: dt.datetime, elapsed: float, command: str) -> str:
    cpu = _cpu_model()
    return "\n".join(
        [
            f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
            f"- command: `{command}` (whole run {elapsed:.0f} s)",
            f"- CPUs: {os.cpu_count()} ({cpu}), {platform.system()} {platform.release()}",
            f"- Python: {platform.python_implementation()} {platform.python_version()}",
            f"- APScheduler: {apscheduler.__version__}",
        ]
    )


def rewrite_readme(section: str, path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{path}: markers {START} / {END} not found")
    path.write_text(f"{head}{START}\n{section}\n{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    print(
        f"schedule: {args.sessions:,} sessions "
        f"(APScheduler baseline {args.apscheduler_sessions:,}), "
        f"best of {args.repeat}, seed {args.seed}",
        flush=True,
    )
    results = schedule.run(args.sessions, args.apscheduler_sessions, args.seed, args.repeat)
    elapsed = time.perf_counter() - t0

    section = "\n\n".join(
        [
            machine(started, elapsed, command.strip()),
            "### schedule: per-session check scheduling",
            table(results),
        ]
    )
    print()
    print(section)
    if args.write_readme:
        rewrite_readme(section)
        print(f"\nwrote {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

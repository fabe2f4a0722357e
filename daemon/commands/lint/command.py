"""The command ``e911d directory lint``: a file or the database, built into the
import's model by the import's own code, then the rules, then what the operator reads.

Both modes run the same validator on a document of the same shape (the database's
is exactly what ``directory export`` would write), so one directory gives the same
findings whichever way it comes in. A file the import would refuse for its structure
is reported like the import reports it, and is not linted: findings on the part that
happened to validate would read as a verdict on the whole.

Every command package has a ``command.py`` (the entry its CLI parser calls) beside
the parts it owns: the same kind of module in parallel places, so the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from e911d.config import Settings
from e911d.daemon.commands.directory_file.command import (
    in_database,
    report_issues,
    report_unreadable,
    snapshot,
)
from e911d.daemon.commands.directory_file.export import export_document
from e911d.daemon.commands.directory_file.files import FileProblem, load
from e911d.daemon.commands.directory_file.validation import validate
from e911d.daemon.commands.lint.findings import Finding, Severity
from e911d.daemon.commands.lint.rules import lint

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # an error-level finding, an invalid file, an unknown account
_MAX_PATH_WIDTH: Final = 40


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(findings: Sequence[Finding], accounts: int) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {
        "errors": counts[Severity.ERROR],
        "warnings": counts[Severity.WARNING],
        "accounts": accounts,
    }


def render_text(findings: Sequence[Finding], accounts: int) -> str:
    """One aligned line per finding (severity, code, account, path, message), then a
    summary line."""
    lines = []
    if findings:
        code_w = max(len(f.code) for f in findings)
        acct_w = max(len(f.account_id) for f in findings)
        path_w = min(_MAX_PATH_WIDTH, max(len(f.path) for f in findings))
        for f in findings:
            lines.append(
                f"{f.severity:<7}  {f.code:<{code_w}}  {f.account_id:<{acct_w}}  "
                f"{f.path:<{path_w}}  {f.message}"
            )
    totals = summary(findings, accounts)
    scope = f"in {_plural(accounts, 'account')}"
    if findings:
        counted = f"{_plural(totals['errors'], 'error')}, {_plural(totals['warnings'], 'warning')}"
        lines.append(f"{counted} {scope}")
    else:
        lines.append(f"no findings {scope}")
    return "\n".join(lines) + "\n"


def render_json(findings: Sequence[Finding], accounts: int) -> str:
    document = {
        "findings": [f.as_dict() for f in findings],
        "summary": summary(findings, accounts),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


async def _document(settings: Settings, wanted: list[str]) -> object:
    """The database's directory, as ``directory export`` writes it (same rows, same order)."""
    rows = await in_database(settings, lambda conn: snapshot(conn, wanted or None))
    exported = export_document(rows)
    if exported.orphans:
        _err(
            f"e911d: warning: skipped the rows of {len(exported.orphan_accounts)} account "
            "id(s) that have no accounts row (not linted)"
        )
    return exported.document


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A large directory is millions of small objects without cycles: the cyclic
    collector would rescan them again and again while they are made (half the run
    time at 250,000 users) and find nothing that reference counting does not free."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def lint_command(
    settings: Settings, *, file: Path | None, accounts: Sequence[str], as_json: bool
) -> int:
    """Exit 1 on an error-level finding, an invalid file or an unknown account; else 0."""
    with _collector_paused():
        return await _lint(settings, file, accounts, as_json=as_json)


async def _lint(
    settings: Settings, file: Path | None, accounts: Sequence[str], *, as_json: bool
) -> int:
    wanted = sorted(set(accounts))
    if file is not None:
        source = str(file)
        try:
            data = await asyncio.to_thread(load, file)
        except FileProblem as exc:
            report_unreadable(file, exc, "nothing was linted")
            return EXIT_FAILED
    else:
        source = "database"
        data = await _document(settings, wanted)
    checked = validate(data, check_references=False)
    if checked.directory is None:
        report_issues(source, checked.issues, "nothing was linted")
        return EXIT_FAILED
    present = {entry.account.account_id for entry in checked.directory.accounts}
    unknown = [a for a in wanted if a not in present]
    if unknown:
        where = "the database" if file is None else str(file)
        for account_id in unknown:
            _err(f"e911d: no account {account_id!r} in {where}")
        return EXIT_FAILED
    findings = lint(checked.directory, wanted or None)
    n_accounts = len(wanted) if wanted else len(present)
    out = render_json(findings, n_accounts) if as_json else render_text(findings, n_accounts)
    sys.stdout.write(out)
    sys.stdout.flush()
    has_errors = any(f.severity is Severity.ERROR for f in findings)
    return EXIT_FAILED if has_errors else EXIT_OK

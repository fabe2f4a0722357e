"""``e911d report``: per account, the evidence that users' E911 locations are kept
current (docs/spec.md#administrator-insight), from the alert history and ``checked_sessions``.

The modules, each depending only on those before it: :mod:`.figures` (the values,
the percentile, the --since syntax; pure), :mod:`.query` (the one read-only snapshot,
``daemon/sql/report.sql``), :mod:`.render` (text, JSON, CSV) and :mod:`.command`.
docs/report.md defines every figure.
"""

from e911d.daemon.commands.report.command import report_command
from e911d.daemon.commands.report.figures import (
    REASONS,
    AccountReport,
    AccountRows,
    BadDuration,
    GroupCount,
    Report,
    Window,
    build_account,
    build_report,
    parse_duration,
    percentile,
)
from e911d.daemon.commands.report.query import Selection, read_report
from e911d.daemon.commands.report.render import render_csv, render_json, render_text

__all__ = [
    "REASONS",
    "AccountReport",
    "AccountRows",
    "BadDuration",
    "GroupCount",
    "Report",
    "Selection",
    "Window",
    "build_account",
    "build_report",
    "parse_duration",
    "percentile",
    "read_report",
    "render_csv",
    "render_json",
    "render_text",
    "report_command",
]

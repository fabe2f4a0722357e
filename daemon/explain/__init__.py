"""``e911d explain``: why a user on an IP gets which outcome (SPEC §2.1, §2.3).

Support engineers answer "why did I get this alert?" with it, so it must never
disagree with the daemon: the outcome, the recommendation and the fingerprint come
from the daemon's own pure rules, and everything else printed is computed alongside
only to make that verdict readable.

Building the answer is kept apart from showing it, so the reasoning is tested with
literals and the output formats can change without touching it. The modules, each
depending only on those before it: :mod:`.model` (the values, and the --ip parser),
:mod:`.build` (the reasoning, and the one read of the database it needs),
:mod:`.render` (text and ``--json``) and :mod:`.command`. This package re-exports
their public names.
"""

from e911d.daemon.explain.build import build_explanation, load_explanation
from e911d.daemon.explain.command import (
    EXIT_INVALID_IP,
    EXIT_OK,
    explain_command,
)
from e911d.daemon.explain.model import (
    ASSIGNED,
    DANGLING,
    NONE,
    UNKNOWN,
    ActiveSession,
    AssignedLocation,
    ContainingGroup,
    EffectiveSetting,
    Explanation,
    GroupRow,
    InvalidIp,
    IpInput,
    Winner,
    parse_input_ip,
)
from e911d.daemon.explain.render import render_json, render_text, to_json

__all__ = [
    "ASSIGNED",
    "DANGLING",
    "EXIT_INVALID_IP",
    "EXIT_OK",
    "NONE",
    "UNKNOWN",
    "ActiveSession",
    "AssignedLocation",
    "ContainingGroup",
    "EffectiveSetting",
    "Explanation",
    "GroupRow",
    "InvalidIp",
    "IpInput",
    "Winner",
    "build_explanation",
    "explain_command",
    "load_explanation",
    "parse_input_ip",
    "render_json",
    "render_text",
    "to_json",
]

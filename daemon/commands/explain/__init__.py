"""``e911d explain``: why a user on an IP gets which outcome (docs/spec.md#effective-setting,
#what-a-check-decides).

Support engineers answer "why did I get this alert?" with it, so it must never
disagree with the daemon: the outcome, the recommendation and the fingerprint come
from the daemon's own pure rules, and everything else printed is computed alongside
only to make that verdict readable.

Building the answer is kept apart from showing it, so the reasoning is tested with
literals and the output formats can change without touching it. The modules, each
depending only on those before it: :mod:`.explanation` (the values, and the parsers of
--ip and the network signals), :mod:`.sentence` (the "Why" line), :mod:`.build`
(the reasoning, and the one read of the database it needs), :mod:`.render` (text
and ``--json``) and :mod:`.command`. This package re-exports their public names.
"""

from e911d.daemon.commands.explain.build import build_explanation, load_explanation, load_session
from e911d.daemon.commands.explain.command import (
    EXIT_INVALID_IP,
    EXIT_OK,
    ExplainArgs,
    explain_command,
)
from e911d.daemon.commands.explain.explanation import (
    ASSIGNED,
    DANGLING,
    NONE,
    UNKNOWN,
    ActiveSession,
    AssignedLocation,
    ContainingGroup,
    EffectiveSetting,
    Explanation,
    InvalidIp,
    InvalidNetwork,
    IpInput,
    SignalRow,
    StoredSession,
    Winner,
    parse_input_ip,
    parse_input_network,
)
from e911d.daemon.commands.explain.render import render_json, render_text, to_json

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
    "ExplainArgs",
    "Explanation",
    "InvalidIp",
    "InvalidNetwork",
    "IpInput",
    "SignalRow",
    "StoredSession",
    "Winner",
    "build_explanation",
    "explain_command",
    "load_explanation",
    "load_session",
    "parse_input_ip",
    "parse_input_network",
    "render_json",
    "render_text",
    "to_json",
]

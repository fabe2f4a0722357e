"""The impact of an import as an operator reads it (text) and as a program does (JSON);
the shape of both is in docs/directory.md#impact-before-import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from e911d.daemon.commands.directory_file.plan import Plan
from e911d.daemon.core.impact import CHANGES, AccountImpact, Action, Change, Example, Side, totals

_ACTIONS = (Action.RAISE, Action.SUPERSEDE, Action.RESOLVE)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _side_text(side: Side) -> str:
    text = side.outcome
    if side.recommended:
        text += f" (recommends {', '.join(side.recommended)})"
    if side.action is Action.NONE:
        return text + ": no change"
    if side.reason is not None and side.action is Action.RESOLVE:
        return f"{text}: resolve {side.reason}"
    return f"{text}: {side.action}"


def _example_text(e: Example) -> str:
    assigned = e.after.assigned_location_id or e.now.assigned_location_id
    where = f", assigned {assigned}" if assigned else ""
    return (
        f"    {e.session_id}  user {e.user_id}  {e.ip}{where}: "
        f"{_side_text(e.now)} -> {_side_text(e.after)}"
    )


def _counts(impact: AccountImpact) -> str:
    parts = [f"{impact.changed[c]:,} {c}" for c in CHANGES]
    reasons = impact.resolved_by_reason
    if reasons:
        by = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items()))
        parts[CHANGES.index(Change.RESOLVED)] += f" ({by})"
    return ", ".join(parts)


def _next_checks(impact: AccountImpact) -> str:
    def line(counts: dict[str, int]) -> str:
        return ", ".join(f"{a} {counts[a]:,}" for a in _ACTIONS)

    return (
        f"  next checks with the current directory: {line(impact.now)}; "
        f"with the file's: {line(impact.after)}"
    )


def render_text(impacts: Sequence[AccountImpact]) -> list[str]:
    total = totals(list(impacts))
    lines = [
        "impact: each live session's next check with the file's directory, against the "
        "current one (only the sessions it changes are counted)"
    ]
    for impact in impacts:
        lines.append(
            f"account {impact.account_id}: {_n(impact.sessions, 'live session')}, "
            f"{impact.changed_sessions:,} changed by this import"
        )
        if impact.changed_sessions:
            lines.append(f"  {_counts(impact)}")
            for change in CHANGES:
                examples = impact.examples.get(change, [])
                if examples:
                    lines.append(f"  {change}, e.g.:")
                    lines.extend(_example_text(e) for e in examples)
        lines.append(_next_checks(impact))
    lines.append(
        f"total: {_n(len(impacts), 'account')}, {_n(total.sessions, 'live session')}, "
        f"{total.changed_sessions:,} changed: {_counts(total)}"
    )
    return lines


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "outcome": side.outcome,
        "action": str(side.action),
        "reason": side.reason,
        "assigned_location_id": side.assigned_location_id,
        "recommended_location_ids": list(side.recommended),
    }


def _counts_json(impact: AccountImpact) -> dict[str, Any]:
    return {
        "sessions": impact.sessions,
        "changed": {
            "sessions": impact.changed_sessions,
            **{str(c): impact.changed[c] for c in CHANGES},
            "resolved_by_reason": dict(sorted(impact.resolved_by_reason.items())),
        },
        "next_check": {
            "current": {str(a): impact.now[a] for a in _ACTIONS},
            "file": {str(a): impact.after[a] for a in _ACTIONS},
        },
    }


def render_json(plan: Plan, impacts: Sequence[AccountImpact]) -> dict[str, Any]:
    return {
        "plan": {
            "changes": [
                {"op": s.op, "kind": s.kind, "account_id": s.account_id, "id": s.entity_id or None}
                for s in plan.steps
            ],
            "summary": plan.summary(),
        },
        "impact": {
            "accounts": [
                {
                    "account_id": impact.account_id,
                    **_counts_json(impact),
                    "examples": {
                        str(c): [
                            {
                                "session_id": e.session_id,
                                "user_id": e.user_id,
                                "ip": e.ip,
                                "current": _side_json(e.now),
                                "file": _side_json(e.after),
                            }
                            for e in impact.examples.get(c, [])
                        ]
                        for c in CHANGES
                    },
                }
                for impact in impacts
            ],
            "total": {"accounts": len(impacts), **_counts_json(totals(list(impacts)))},
        },
    }

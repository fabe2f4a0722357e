"""docs/events.md and the generated schemas say the same thing: which fields each event
type has, which are required, and how the open enumerations fall back
(docs/spec.md#event-contracts). The page is read, not trusted: its field tables are
parsed and compared with the committed schemas."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from e911d.daemon.commands import contracts
from e911d.daemon.commands.asyncapi_parts import DLQ_REASON_FALLBACK
from e911d.daemon.core.events import InvalidReason
from e911d.daemon.core.model import MatchedBy, RecommendationKind, ResolveReason

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "docs" / "events.md"
NAME = re.compile(r"`([a-z_][a-z0-9_.]*)`")
FIRST_NAME = re.compile(r"(?:^|,)\s*`([a-z_][a-z0-9_.]*)`")

# (event type, path of the object inside its data) -> {field: required?}
Documented = dict[tuple[str, tuple[str, ...]], dict[str, bool]]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _required(cell: str) -> bool:
    word = cell.split(None, 1)[0].strip(",").lower() if cell else ""
    assert word in ("yes", "no"), f"a Required cell says {cell!r}"
    return word == "yes"


def documented(text: str) -> Documented:
    """Every field the page's tables list, with whether it says the field is required.

    Tables under a heading naming an event type (`### \\`e911.x.y\\``) have a Required
    column; a `####` heading naming a field holds that field's own table; the directory
    types share one table of required and optional fields.
    """
    types = set(contracts.data_types())
    found: Documented = defaultdict(dict)
    event: str | None = None
    nested: tuple[str, ...] = ()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            names = NAME.findall(line)
            if level <= 2:
                event, nested = None, ()
            elif level == 3:
                event = names[0] if names and names[0] in types else None
                nested = ()
            elif event is not None and names:
                nested = (names[0],)
            continue
        if not line.startswith("|") or i + 1 >= len(lines) or not lines[i + 1].startswith("| -"):
            continue
        header = _cells(line)
        rows = []
        for row in lines[i + 2 :]:
            if not row.startswith("|"):
                break
            rows.append(_cells(row))
        if header[:2] == ["Type", "Required data fields"]:
            for cells in rows:
                (kind,) = NAME.findall(cells[0])
                found[(kind, ())].update(dict.fromkeys(FIRST_NAME.findall(cells[1]), True))
                found[(kind, ())].update(dict.fromkeys(FIRST_NAME.findall(cells[2]), False))
        elif "Required" in header and event is not None:
            column = header.index("Required")
            for cells in rows:
                for name in NAME.findall(cells[0]):
                    *inner, leaf = name.split(".")
                    found[(event, (*nested, *inner))][leaf] = _required(cells[column])
    return dict(found)


def _object_at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The object schema at ``path`` of a data schema, through ``$ref`` and nullable ``anyOf``."""
    defs = schema.get("$defs", {})

    def deref(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return deref(defs[node["$ref"].rsplit("/", 1)[1]])
        for branch in node.get("anyOf", ()):
            if branch.get("type") != "null":
                return deref(branch)
        return node

    node = schema
    for part in path:
        node = deref(node["properties"][part])
    return node


def committed(event_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ROOT / "docs/schemas" / f"{event_type}.json").read_text())
    return schema


DOCUMENTED = documented(EVENTS.read_text("utf-8"))


def test_every_event_type_has_its_fields_documented() -> None:
    assert {event for event, path in DOCUMENTED if path == ()} == set(contracts.data_types())


@pytest.mark.parametrize(
    ("event_type", "path"),
    [pytest.param(e, p, id=".".join((e, *p))) for e, p in sorted(DOCUMENTED)],
)
def test_the_page_and_the_schema_agree_on_fields_and_required(
    event_type: str, path: tuple[str, ...]
) -> None:
    target = _object_at(committed(event_type), path)
    fields = DOCUMENTED[(event_type, path)]
    assert set(fields) == set(target["properties"]), "fields listed vs the schema's"
    assert {f for f, required in fields.items() if required} == set(target.get("required", ()))


def test_the_parser_sees_a_disagreement() -> None:
    """The comparison can fail: a field the page calls optional but the schema requires."""
    text = EVENTS.read_text("utf-8").replace("| `checked_at` | yes |", "| `checked_at` | no |", 1)
    fields = documented(text)[("e911.alert.raised", ())]
    assert fields["checked_at"] is False
    assert "checked_at" in committed("e911.alert.raised")["required"]


# ---- open enumerations -------------------------------------------------------------------

OPEN = {
    "`matched_by` (`e911.alert.raised`)": ("MatchedBy", MatchedBy),
    "`recommendation.kind` (`e911.alert.raised`)": ("RecommendationKind", RecommendationKind),
    "`reason` (`e911.alert.resolved`)": ("ResolveReason", ResolveReason),
}


def _forward_compatibility_table() -> dict[str, list[str]]:
    text = EVENTS.read_text("utf-8")
    start = text.index("| Field | Known values | Fallback for a value you do not know |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        rows[cells[0]] = cells[1:]
    return rows


def test_the_page_states_the_fallback_the_schemas_state() -> None:
    table = _forward_compatibility_table()
    assert set(OPEN) | {"`e911.dlq.reason` (dead-letter header)"} == set(table)
    for field, (definition, enum) in OPEN.items():
        known, fallback = table[field]
        assert set(NAME.findall(known)) - {"null"} == {v.value for v in enum}, field
        assert fallback.split(":")[0] == contracts.FALLBACKS[definition].split(":")[0], field
        assert fallback.split(":")[0].strip("`") in {"null", *(v.value for v in enum)}
    dlq_fallback = table["`e911.dlq.reason` (dead-letter header)"][1]
    assert dlq_fallback.split(":")[0] == DLQ_REASON_FALLBACK.split(":")[0]
    assert dlq_fallback.split(":")[0].strip("`") in {r.value for r in InvalidReason}

"""The machine-readable event contracts (docs/spec.md#event-contracts): a JSON Schema for every
event's ``data`` and an AsyncAPI 3 document for the four topics (its messages, servers
and security in :mod:`~e911d.daemon.commands.asyncapi_parts`; one example of every
event, checked by the daemon's own codecs, in
:mod:`~e911d.daemon.commands.contract_examples`).

Both are generated from the types the daemon decodes and encodes the events with
(:data:`~e911d.consumers.wire.SESSION_DATA`, :data:`~e911d.consumers.wire.DIRECTORY_DATA`,
:data:`~e911d.daemon.store.alert_data.ALERT_DATA`, the :class:`~e911d.consumers.envelope.Envelope`),
so a field added to a type is in the contracts at the next ``make contracts``, and
``tests/unit/test_contracts.py`` fails while the committed copies lag behind the code.
Output is deterministic (sorted keys) so that a diff shows only real changes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from e911d.consumers.envelope import CONTENT_TYPE, SPEC_VERSION, Envelope
from e911d.consumers.wire import DIRECTORY_DATA, SESSION_DATA
from e911d.daemon.commands.asyncapi_parts import (
    ENVELOPE,
    binary,
    dead_letter,
    open_enum,
    security_schemes,
    servers,
    structured,
    topics,
)
from e911d.daemon.commands.contract_examples import example_events
from e911d.daemon.store.alert_data import ALERT_DATA

# The contract's own version: bump it when a generated file changes meaning, and say
# what changed in docs/contract-changelog.md.
CONTRACT_VERSION: Final = "1.5.0"
MAJOR: Final = CONTRACT_VERSION.split(".")[0]
# No host publishes the schemas: a URN names each, stable within a major version.
SCHEMA_ID: Final = "urn:e911d:schemas:v" + MAJOR + ":{event_type}"
SCHEMA_DIR: Final = Path("docs/schemas")
ASYNCAPI_FILE: Final = Path("docs/asyncapi.yaml")
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def data_types() -> dict[str, type[msgspec.Struct]]:
    """Every event type e911d reads or writes, and the type of its ``data``."""
    return {str(t): s for t, s in {**SESSION_DATA, **DIRECTORY_DATA, **ALERT_DATA}.items()}


# docs/spec.md#alerts-topic: an enumerated field of what e911d publishes may gain values
# in a minor version, and a subscriber treats one it does not know as the fallback.
# So the schemas list the known values without refusing others. Every enumeration an
# outbound type uses needs its fallback here, or generation stops.
FALLBACKS: Final = {
    "MatchedBy": "`null`: nothing (known) located the session",
    "RecommendationKind": "`all_locations`: offer the listed locations to choose from",
    "ResolveReason": "`location_undetermined`: the alert no longer applies, for no "
    "reason the subscriber needs to act on",
}


def _open_enums(defs: dict[str, Any], names: Sequence[str]) -> None:
    for name in names:
        closed = defs[name]
        defs[name] = {
            "title": closed.get("title", name),
            **open_enum(closed["enum"], FALLBACKS[name], closed.get("description", "")),
        }


def _enum_defs(structs: Sequence[type[msgspec.Struct]]) -> set[str]:
    _, components = msgspec.json.schema_components(structs)
    return {name for name, schema in components.items() if "enum" in schema}


def outbound_enums() -> list[str]:
    """The enumerations e911d publishes, each opened; an inbound one stays closed (the
    decoder refuses an unknown value, so its schema must too)."""
    outbound = _enum_defs(list(ALERT_DATA.values()))
    shared = outbound & _enum_defs([*SESSION_DATA.values(), *DIRECTORY_DATA.values()])
    missing = outbound - set(FALLBACKS)
    if shared or missing:
        raise ValueError(f"enumerations shared with inbound {shared}, without fallback {missing}")
    return sorted(outbound)


def _portable(schema: dict[str, Any]) -> dict[str, Any]:
    """Python's ``\\A``/``\\Z`` anchors as ECMA-262 (JSON Schema's regex dialect) spells them."""
    out: dict[str, Any] = _anchors(schema)
    return out


def _anchors(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _anchors(v) for k, v in node.items()}
        pattern = out.get("pattern")
        if isinstance(pattern, str):
            out["pattern"] = re.sub(r"\\Z$", "$", re.sub(r"^\\A", "^", pattern))
        return out
    if isinstance(node, list):
        return [_anchors(v) for v in node]
    return node


def _described(event_type: str, root: dict[str, Any]) -> dict[str, Any]:
    out = dict(root)
    out["title"] = event_type
    doc = out.pop("description", None)
    out["description"] = (
        doc or f"The `data` of a `{event_type}` CloudEvent (docs/spec.md#event-contracts)."
    )
    return out


def data_schema(event_type: str) -> dict[str, Any]:
    """The stand-alone JSON Schema (2020-12) of one event type's ``data``."""
    struct = data_types()[event_type]
    (_,), components = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    root = components.pop(struct.__name__)
    _open_enums(components, [n for n in outbound_enums() if n in components])
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_ID.format(event_type=event_type),
        **_described(event_type, root),
        "examples": [example_events()[event_type]["data"]],
    }
    if components:
        schema["$defs"] = components
    return _portable(schema)


# ---- AsyncAPI ----------------------------------------------------------------------------


def _component_schemas() -> dict[str, Any]:
    """Each type's data under its event type's name, their shared parts by their own names,
    and the structured-mode envelope."""
    types = data_types()
    structs = list(dict.fromkeys(types.values()))
    _, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )
    roots = {s.__name__: components[s.__name__] for s in structs}
    schemas = {k: v for k, v in components.items() if k not in roots}
    _open_enums(schemas, outbound_enums())
    for event_type, struct in types.items():
        schemas[event_type] = _described(event_type, roots[struct.__name__])
    envelope = msgspec.json.schema(Envelope)["$defs"]["Envelope"]
    envelope["title"] = ENVELOPE
    envelope["description"] = (
        "A CloudEvents 1.0 event in structured JSON mode; `data` depends on `type`. "
        "Unknown attributes are ignored."
    )
    props = envelope["properties"]
    props["specversion"] = {"const": SPEC_VERSION}
    props["time"] = {"type": "string", "format": "date-time"}
    props["datacontenttype"] = {
        "type": "string",
        "description": "application/json, any */*+json, or absent: the data is JSON.",
    }
    props["subject"] = {"type": "string"}
    schemas[ENVELOPE] = envelope
    return _portable(schemas)


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the four topics (default names; all configurable)."""
    types_by_channel = {
        "sessionEvents": [str(t) for t in SESSION_DATA],
        "directoryEvents": [str(t) for t in DIRECTORY_DATA],
        "alerts": [str(t) for t in ALERT_DATA],
    }
    schemas = _component_schemas()
    envelope = schemas[ENVELOPE]["properties"]
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel, topic, action, key, description in topics():
        names: list[str] = []
        if channel == "deadLetter":
            messages["dead-letter"] = dead_letter(key)
            names.append("dead-letter")
        for event_type in types_by_channel.get(channel, []):
            # Session events must say when they happened; alerts always carry all of these.
            required = {"sessionEvents": ["time"], "alerts": ["time", "subject"]}.get(channel, [])
            messages[event_type] = structured(event_type, key, required)
            names.append(event_type)
            if action == "receive":
                messages[f"{event_type}.binary"] = binary(event_type, key, required, envelope)
                names.append(f"{event_type}.binary")
        channels[channel] = {
            "address": topic,
            "description": f"{description} Default topic name; configurable.",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        operations[f"{action}{channel[0].upper()}{channel[1:]}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names],
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:e911d",
        "info": {
            "title": "e911d events",
            "version": CONTRACT_VERSION,
            "description": "The Kafka topics e911d reads and writes. Generated from the "
            "code by `e911d contracts`; see docs/events.md for the rules behind them, and "
            "docs/contract-changelog.md for what changed in each version.",
        },
        "servers": servers(),
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": security_schemes(),
        },
    }


# ---- files -------------------------------------------------------------------------------


def _json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Every contract file, by its path relative to the repository root."""
    files = {SCHEMA_DIR / f"{t}.json": _json(data_schema(t)) for t in data_types()}
    files[ASYNCAPI_FILE] = "# Generated by `e911d contracts` (make contracts): do not edit.\n" + (
        yaml.safe_dump(asyncapi(), sort_keys=True, allow_unicode=True, width=100)
    )
    return files


def drift(root: Path, files: Mapping[Path, str] | None = None) -> list[str]:
    """What differs between the files under ``root`` and what the code generates."""
    files = render() if files is None else files
    problems = [
        f"{path} is out of date"
        for path, text in sorted(files.items())
        if not (root / path).is_file() or (root / path).read_text() != text
    ]
    stale = sorted(p.relative_to(root) for p in (root / SCHEMA_DIR).glob("*.json"))
    problems += [f"{p} is not generated any more" for p in stale if p not in files]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e911d contracts", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    args = parser.parse_args(argv)
    return run(args.root, check=args.check)


def run(root: Path, *, check: bool) -> int:
    files = render()
    if check:
        problems = drift(root, files)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    for stale in (root / SCHEMA_DIR).glob("*.json"):
        if stale.relative_to(root) not in files:
            stale.unlink()
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    print(f"wrote {len(files)} contract files under {root / 'docs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

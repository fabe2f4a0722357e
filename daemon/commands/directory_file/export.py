"""The export: the database's rows as a directory file, sorted so that the same data
gives the same bytes, and rendered so that an import takes it back."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from e911d.daemon.core.network import (
    BadMac,
    format_bssid,
    format_chassis_id,
    normalize_bssid_pattern,
)
from e911d.daemon.store.directory_rows import Row, Rows

_ADDRESS_ORDER: Final = (
    "street",
    "building",
    "floor",
    "unit",
    "city",
    "region",
    "postal_code",
    "country",
)


def _address_doc(address: object) -> object:
    if not isinstance(address, dict):
        return address
    known = [k for k in _ADDRESS_ORDER if k in address]
    return {k: address[k] for k in [*known, *sorted(set(address) - set(known), key=str)]}


def _location_doc(r: Row) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "location_id": r["location_id"],
        "name": r["name"],
        "address": _address_doc(r["address"]),
    }
    if r["lat"] is not None and r["lon"] is not None:
        doc["coordinates"] = {"lat": r["lat"], "lon": r["lon"]}
    return doc


def _bssid_text(stored: str) -> str:
    """The colon spelling; a value another writer stored that is no BSSID is written
    as it is, so that the import names it instead of the export hiding it."""
    try:
        return format_bssid(normalize_bssid_pattern(stored))
    except BadMac:
        return stored


def _switch_doc(stored: object) -> object:
    if not isinstance(stored, dict) or not isinstance(stored.get("chassis_id"), str):
        return stored  # not the projector's: the import will say what is wrong
    doc = {"chassis_id": format_chassis_id(stored["chassis_id"])}
    if stored.get("port_id") is not None:
        doc["port_id"] = stored["port_id"]
    return doc


def _ip_group_doc(r: Row, addresses: Sequence[str]) -> dict[str, Any]:
    """The network signals only when set (``locating`` only when false), so that the
    file of a directory without them reads, and diffs, as before they existed."""
    doc: dict[str, Any] = {
        "ip_group_id": r["ip_group_id"],
        "name": r["name"],
        "location_id": r["location_id"],
        "addresses": list(addresses),
    }
    if r["bssids"]:
        doc["bssids"] = [_bssid_text(b) for b in r["bssids"]]
    if r["switches"]:
        doc["switches"] = [_switch_doc(s) for s in r["switches"]]
    if not r["locating"]:
        doc["locating"] = False
    return doc


def _user_doc(r: Row) -> dict[str, Any]:
    return {
        "user_id": r["user_id"],
        "e911_recommendations": r["e911_recommendations"],
        "e911_location_id": r["e911_location_id"],
    }


@dataclass(frozen=True, slots=True)
class Exported:
    document: dict[str, Any]
    orphans: Mapping[str, int]  # rows of accounts without an accounts row, per list
    orphan_accounts: frozenset[str]
    dangling: tuple[str, ...]  # references naming no location of the account


def _dangling(account: Mapping[str, Any]) -> list[str]:
    locations = {loc["location_id"] for loc in account["locations"]}
    refs = [
        *((f"ip_group {g['ip_group_id']}", g["location_id"]) for g in account["ip_groups"]),
        *((f"user {u['user_id']}", u["e911_location_id"]) for u in account["users"]),
    ]
    return [
        f"{account['account_id']}: {who} -> {target!r}"
        for who, target in refs
        if target is not None and target not in locations
    ]


def export_document(rows: Rows) -> Exported:
    """The file for these rows, sorted by ids so that the same data gives the same bytes."""
    known = {r["account_id"]: r["e911_recommendations"] for r in rows.accounts}
    lists: dict[str, dict[str, list[dict[str, Any]]]] = {
        a: {"locations": [], "ip_groups": [], "users": []} for a in known
    }
    orphans: Counter[str] = Counter()
    orphan_accounts: set[str] = set()
    addresses = rows.group_addresses()

    def ip_group_doc(r: Row) -> dict[str, Any]:
        return _ip_group_doc(r, addresses[(r["account_id"], r["ip_group_id"])])

    sources: tuple[tuple[str, str, tuple[Row, ...], Callable[[Row], dict[str, Any]]], ...] = (
        ("locations", "location_id", rows.locations, _location_doc),
        ("ip_groups", "ip_group_id", rows.ip_groups, ip_group_doc),
        ("users", "user_id", rows.users, _user_doc),
    )
    for key, id_field, items, render in sources:
        for r in sorted(items, key=lambda row: (row["account_id"], row[id_field])):
            if r["account_id"] in lists:
                lists[r["account_id"]][key].append(render(r))
            else:
                orphans[key] += 1
                orphan_accounts.add(r["account_id"])
    accounts = [
        {"account_id": a, "e911_recommendations": known[a], **lists[a]} for a in sorted(known)
    ]
    dangling = tuple(line for account in accounts for line in _dangling(account))
    return Exported({"accounts": accounts}, dict(orphans), frozenset(orphan_accounts), dangling)


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, and never an anchor: an exported
    file must be importable, and the import refuses anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# Characters a YAML reader folds or drops outside a double-quoted scalar (line breaks
# other than \n, and anything not printable): such a string must keep its escapes.
_FRAGILE = frozenset("\x85\u2028\u2029\r\ufeff")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(c in _FRAGILE or not c.isprintable() for c in value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def render(document: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    text: str = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 30,  # never fold long names across lines
    )
    return text

"""``report networks --format directory``: the suggested IP groups as a directory file
(docs/directory.md) that ``e911d directory import`` accepts.

One group per network whose agreement reaches ``learning.agreement``, tied to the
location the users agreed on: an IP prefix as its CIDR in ``addresses``, a BSSID in
``bssids``, a switch port in ``switches``. Group ids and names are derived from the
network alone, so a second run suggests the same groups (an import of it changes
nothing) and an administrator sees at once which groups e911d suggested. Each
account entry repeats the account's own toggle, since an account entry in a file
replaces the whole account; the file lists no locations and no users, so an import
without ``--prune`` leaves them alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any, Final

from e911d.daemon.commands.directory_file.export import render
from e911d.daemon.commands.networks.agreement import NetworkReport, NetworksReport
from e911d.daemon.core.network import format_bssid, format_chassis_id
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind

ID_PREFIX: Final = "suggested-"
NAME_PREFIX: Final = "Suggested by e911d report networks: "
# The directory's limits on ids and names (docs/directory.md#ids-names-and-types).
MAX_ID: Final = 256
MAX_NAME: Final = 512
_KIND_WORD: Final = {
    NetworkKeyKind.BSSID: "bssid",
    NetworkKeyKind.SWITCH_PORT: "port",
    NetworkKeyKind.IP_PREFIX: "ip",
}


def _digest(key: NetworkKey) -> str:
    return hashlib.sha256(f"{key.kind}\x1e{key.value}".encode()).hexdigest()[:16]


def group_id(key: NetworkKey) -> str:
    """``suggested-ip-203.0.113.0-24``, ``suggested-bssid-f0:6e:0b:c2:03:21``,
    ``suggested-port-00:1b:54:aa:bb:cc-gi1/0/12``; a digest of the key when that would
    be longer than an id may be."""
    word = _KIND_WORD[key.kind]
    if key.kind is NetworkKeyKind.IP_PREFIX:
        readable = key.value.replace("/", "-")
    elif key.kind is NetworkKeyKind.BSSID:
        readable = format_bssid(key.value)
    else:
        chassis, port = key.chassis_port
        readable = f"{format_chassis_id(chassis)}-{port}"
    gid = f"{ID_PREFIX}{word}-{readable}"
    return gid if len(gid) <= MAX_ID else f"{ID_PREFIX}{word}-{_digest(key)}"


def group_name(key: NetworkKey) -> str:
    name = NAME_PREFIX + key.display
    return name if len(name) <= MAX_NAME else f"{NAME_PREFIX}{key.kind} {_digest(key)}"


def group_doc(network: NetworkReport, location_id: str) -> dict[str, Any]:
    key = network.key
    doc: dict[str, Any] = {
        "ip_group_id": group_id(key),
        "name": group_name(key),
        "location_id": location_id,
        "addresses": [key.value] if key.kind is NetworkKeyKind.IP_PREFIX else [],
    }
    if key.kind is NetworkKeyKind.BSSID:
        doc["bssids"] = [format_bssid(key.value)]
    elif key.kind is NetworkKeyKind.SWITCH_PORT:
        chassis, port = key.chassis_port
        doc["switches"] = [{"chassis_id": format_chassis_id(chassis), "port_id": port}]
    return doc


def suggested_document(report: NetworksReport, toggles: Mapping[str, bool]) -> dict[str, Any]:
    """The file's document: accounts not in the directory any more are left out (an
    import would create them)."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for network in report.networks:
        chosen = network.suggests(report.agreement)
        if chosen is None or network.account_id not in toggles:
            continue
        doc = group_doc(network, chosen.location_id)
        groups.setdefault(network.account_id, {}).setdefault(doc["ip_group_id"], doc)
    return {
        "accounts": [
            {
                "account_id": account_id,
                "e911_recommendations": toggles[account_id],
                "ip_groups": [docs[g] for g in sorted(docs)],
            }
            for account_id, docs in sorted(groups.items())
        ]
    }


def suggested_accounts(report: NetworksReport) -> list[str]:
    """The accounts with at least one network to suggest (whose toggles the file needs)."""
    return sorted({n.account_id for n in report.networks if n.suggests(report.agreement)})


def render_directory(report: NetworksReport, toggles: Mapping[str, bool]) -> str:
    document = suggested_document(report, toggles)
    count = sum(len(a["ip_groups"]) for a in document["accounts"])
    header = [
        "# IP groups suggested by `e911d report networks --format directory`",
        f"# generated {report.generated_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC from the days "
        f"{report.first_day:%Y-%m-%d} .. {report.last_day:%Y-%m-%d} (UTC), "
        f"{count} group(s): networks nobody configured",
        f"# where at least {report.agreement:.0%} of the users who confirmed a location chose "
        "the same one.",
        "# Review, then: e911d directory import FILE --dry-run; e911d directory import FILE",
    ]
    return "\n".join(header) + "\n" + render(document, "yaml")

"""A lint finding: a stable code, a severity, and the offending entity by its path and
by its own id (the path's indices move when the directory is edited; the id does not,
so a script can follow a finding from one run to the next).

The codes are a contract (scripts and dashboards match on them): never rename one,
only add. docs/lint.md says what each means and how to fix it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from e911d.daemon.commands.directory_file.field_rules import path_order


class Severity(enum.StrEnum):
    """An error makes the lint exit 1: users cannot be located at all."""

    ERROR = "error"
    WARNING = "warning"


class Code(enum.StrEnum):
    USER_LOCATION_MISSING = "user_location_missing"
    ACCOUNT_WITHOUT_LOCATIONS = "account_without_locations"
    AMBIGUOUS_NETWORK = "ambiguous_network"
    AMBIGUOUS_BSSID = "ambiguous_bssid"
    AMBIGUOUS_SWITCH_PORT = "ambiguous_switch_port"
    AMBIGUOUS_SWITCH = "ambiguous_switch"
    NONLOCATING_TIE = "nonlocating_tie"
    LOCATION_WITHOUT_NETWORK = "location_without_network"
    GROUP_WITHOUT_LOCATION = "group_without_location"
    GROUP_LOCATION_MISSING = "group_location_missing"
    USER_WITHOUT_LOCATION = "user_without_location"
    LOCATION_ADDRESS_INCOMPLETE = "location_address_incomplete"
    LOCATIONS_SHARE_ADDRESS = "locations_share_address"


SEVERITY: Final = {
    Code.USER_LOCATION_MISSING: Severity.ERROR,
    Code.ACCOUNT_WITHOUT_LOCATIONS: Severity.ERROR,
    Code.AMBIGUOUS_NETWORK: Severity.WARNING,
    Code.AMBIGUOUS_BSSID: Severity.WARNING,
    Code.AMBIGUOUS_SWITCH_PORT: Severity.WARNING,
    Code.AMBIGUOUS_SWITCH: Severity.WARNING,
    Code.NONLOCATING_TIE: Severity.WARNING,
    Code.LOCATION_WITHOUT_NETWORK: Severity.WARNING,
    Code.GROUP_WITHOUT_LOCATION: Severity.WARNING,
    Code.GROUP_LOCATION_MISSING: Severity.WARNING,
    Code.USER_WITHOUT_LOCATION: Severity.WARNING,
    Code.LOCATION_ADDRESS_INCOMPLETE: Severity.ERROR,
    Code.LOCATIONS_SHARE_ADDRESS: Severity.WARNING,
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: Code
    severity: Severity
    path: str  # the import's path style: accounts[0].ip_groups[2]
    account_id: str
    entity_id: str  # the id of what the path points at: a user, location, group or account
    message: str  # names the entity by that id too

    @classmethod
    def of(cls, code: Code, path: str, account_id: str, entity_id: str, message: str) -> Finding:
        return cls(code, SEVERITY[code], path, account_id, entity_id, message)

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "path": self.path,
            "account_id": self.account_id,
            "entity_id": self.entity_id,
            "message": self.message,
        }


def in_order(findings: Iterable[Finding]) -> list[Finding]:
    """Document order (list items by index), then code, then message: deterministic."""
    return sorted(findings, key=lambda f: (path_order(f.path), f.code.value, f.message))

"""The lint rules: pure, one pass over a directory, dicts keyed by entry.

They judge the directory the way a check will (:mod:`daemon.core.evaluation`): a locating
group counts only when it names an existing location; a non-locating group counts
whatever it names, and wins any tie; an entry is compared at its own precedence
(an exact BSSID and a pattern covering it are not a tie: the exact one wins; a /24
inside a /16 is not a tie: the longest prefix wins). Networks are compared as the
checks compare them: ranges expanded to the CIDRs that cover them exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from e911d.daemon.commands.directory_file.validation import AccountEntry, DirectoryFile
from e911d.daemon.commands.lint.findings import Code, Finding, in_order
from e911d.daemon.core.address import missing_civic_fields, place_key
from e911d.daemon.core.events import IpGroupUpserted
from e911d.daemon.core.network import format_bssid, format_chassis_id

# An entry's kind and its identity at one precedence: ("ip", "203.0.113.0/24"),
# ("bssid", "f06e0bc20321"), ("switch_port", chassis, port), ("switch", chassis).
_EntryKey = tuple[str, ...]

_AMBIGUOUS: Final = {
    "ip": Code.AMBIGUOUS_NETWORK,
    "bssid": Code.AMBIGUOUS_BSSID,
    "switch_port": Code.AMBIGUOUS_SWITCH_PORT,
    "switch": Code.AMBIGUOUS_SWITCH,
}
_FIELD_TEXT: Final = {
    "street": "street with a number",
    "city": "city",
    "region": "region",
    "postal_code": "postal code",
    "country": "country",
}
_WHAT: Final = {
    "ip": "network",
    "bssid": "BSSID",
    "switch_port": "switch port",
    "switch": "switch",
}


@dataclass(frozen=True, slots=True)
class _Listed:
    """One group that lists an entry, where it is in the document."""

    index: int
    group: IpGroupUpserted


def _entries(group: IpGroupUpserted) -> Iterator[_EntryKey]:
    """Each entry once, even when a group lists it twice (or in two spellings)."""
    seen: set[_EntryKey] = set()
    keys: Iterable[_EntryKey] = (
        *(("ip", str(net)) for net in group.networks),
        *(("bssid", b) for b in group.bssids),
        *(
            ("switch", sw.chassis_id)
            if sw.port_id is None
            else ("switch_port", sw.chassis_id, sw.port_id)
            for sw in group.switches
        ),
    )
    for key in keys:
        if key not in seen:
            seen.add(key)
            yield key


def _entry_text(key: _EntryKey) -> str:
    kind = key[0]
    if kind == "bssid":
        return format_bssid(key[1])
    if kind == "switch":
        return format_chassis_id(key[1])
    if kind == "switch_port":
        return f"{format_chassis_id(key[1])} port {key[2]}"
    return key[1]


def _group_text(path: str, listed: _Listed) -> str:
    g = listed.group
    where = f"location {g.location_id!r}" if g.locating else "non-locating"
    return f"{g.ip_group_id!r} ({path}.ip_groups[{listed.index}], {where})"


class _Account:
    """The findings of one account, collected in one pass over its lists."""

    def __init__(self, entry: AccountEntry, path: str) -> None:
        self.entry = entry
        self.path = path
        self.account_id = entry.account.account_id
        self.location_ids = frozenset(loc.location_id for loc in entry.locations)
        self.findings: list[Finding] = []

    def add(self, code: Code, path: str, entity_id: str, message: str) -> None:
        self.findings.append(Finding.of(code, path, self.account_id, entity_id, message))

    def run(self) -> list[Finding]:
        self.account()
        self.addresses()
        self.groups()
        self.users()
        return self.findings

    def addresses(self) -> None:
        """docs/spec.md#dispatchable-addresses: a dispatcher must be able to find the
        building (a complete civic address) and the place inside it (two locations at
        the same address must differ in building, floor or unit)."""
        first_at: dict[tuple[str, ...], tuple[int, str]] = {}
        for i, loc in enumerate(self.entry.locations):
            lpath = f"{self.path}.locations[{i}]"
            missing = missing_civic_fields(loc.address)
            if missing:
                self.add(
                    Code.LOCATION_ADDRESS_INCOMPLETE,
                    f"{lpath}.address",
                    loc.location_id,
                    f"location {loc.location_id!r} ({loc.name}) has no "
                    f"{', '.join(_FIELD_TEXT[m] for m in missing)} in its address: "
                    "a dispatcher cannot find the building",
                )
            key = place_key(loc.address)
            first = first_at.setdefault(key, (i, loc.location_id))
            if first[0] != i:
                self.add(
                    Code.LOCATIONS_SHARE_ADDRESS,
                    f"{lpath}.address",
                    loc.location_id,
                    f"location {loc.location_id!r} ({loc.name}) has the same address as "
                    f"{first[1]!r} ({self.path}.locations[{first[0]}]), and the same building, "
                    "floor and unit: a dispatcher cannot tell them apart",
                )

    def account(self) -> None:
        entry = self.entry
        if entry.locations:
            return
        if entry.account.e911_recommendations:
            why = "its toggle is on"
        else:
            enabled = sum(1 for u in entry.users if u.e911_recommendations)
            if not enabled:
                return
            why = f"{enabled} user(s) have their own toggle on"
        self.add(
            Code.ACCOUNT_WITHOUT_LOCATIONS,
            self.path,
            self.account_id,
            f"account {self.account_id!r} is enabled ({why}) but has no locations: "
            "every check says no_locations and nobody is ever told to fix a location",
        )

    def groups(self) -> None:
        by_entry: dict[_EntryKey, list[_Listed]] = {}
        reached: set[str] = set()
        for i, group in enumerate(self.entry.ip_groups):
            gpath = f"{self.path}.ip_groups[{i}]"
            if group.locating and group.location_id is None:
                self.add(
                    Code.GROUP_WITHOUT_LOCATION,
                    gpath,
                    group.ip_group_id,
                    f"locating group {group.ip_group_id!r} has no location_id: checks ignore it",
                )
                continue
            if group.locating and group.location_id not in self.location_ids:
                self.add(
                    Code.GROUP_LOCATION_MISSING,
                    gpath,
                    group.ip_group_id,
                    f"group {group.ip_group_id!r} names location {group.location_id!r}, "
                    f"which account {self.account_id!r} does not have: checks ignore it",
                )
                continue
            listed = _Listed(i, group)
            has_entries = False
            for key in _entries(group):
                has_entries = True
                by_entry.setdefault(key, []).append(listed)
            if group.locating and has_entries and group.location_id is not None:
                reached.add(group.location_id)
        for key, groups in by_entry.items():
            if len(groups) > 1:
                self.tie(key, groups)
        for i, loc in enumerate(self.entry.locations):
            if loc.location_id not in reached:
                self.add(
                    Code.LOCATION_WITHOUT_NETWORK,
                    f"{self.path}.locations[{i}]",
                    loc.location_id,
                    f"no locating group with a network, BSSID or switch leads to location "
                    f"{loc.location_id!r} ({loc.name}): a user there can never be confirmed",
                )

    def tie(self, key: _EntryKey, groups: list[_Listed]) -> None:
        """One finding per entry, at the group that makes the tie, naming the others."""
        text = f"{_WHAT[key[0]]} {_entry_text(key)}"
        nonlocating = [g for g in groups if not g.group.locating]
        locating = [g for g in groups if g.group.locating]
        if nonlocating and locating:
            at = nonlocating[0]
            others = ", ".join(_group_text(self.path, g) for g in groups if g is not at)
            self.add(
                Code.NONLOCATING_TIE,
                f"{self.path}.ip_groups[{at.index}]",
                at.group.ip_group_id,
                f"{text} of non-locating group {at.group.ip_group_id!r} is also in {others}: "
                "the non-locating group wins, so a session there is never alerted",
            )
            return
        first = locating[0].group.location_id if locating else None
        second = next((g for g in locating if g.group.location_id != first), None)
        if second is None:
            return  # every group leads to the same location (or none locates)
        others = ", ".join(_group_text(self.path, g) for g in groups if g is not second)
        self.add(
            _AMBIGUOUS[key[0]],
            f"{self.path}.ip_groups[{second.index}]",
            second.group.ip_group_id,
            f"{text} of group {second.group.ip_group_id!r} (location "
            f"{second.group.location_id!r}) is also in {others}: "
            "a session there is recommended all of these locations",
        )

    def users(self) -> None:
        account_on = self.entry.account.e911_recommendations
        has_locations = bool(self.location_ids)
        for i, user in enumerate(self.entry.users):
            target = user.e911_location_id
            if target is not None and target not in self.location_ids:
                self.add(
                    Code.USER_LOCATION_MISSING,
                    f"{self.path}.users[{i}]",
                    user.user_id,
                    f"user {user.user_id!r} is assigned location {target!r}, which account "
                    f"{self.account_id!r} does not have: checks treat it as no location",
                )
            elif target is None and has_locations and (account_on or user.e911_recommendations):
                self.add(
                    Code.USER_WITHOUT_LOCATION,
                    f"{self.path}.users[{i}]",
                    user.user_id,
                    f"user {user.user_id!r} is enabled but has no assigned location",
                )


def lint(directory: DirectoryFile, accounts: Collection[str] | None = None) -> list[Finding]:
    """Every finding of the directory (or of the named ``accounts``), in document order.

    Paths keep the document's own indices, whichever accounts are linted.
    """
    found: list[Finding] = []
    for i, entry in enumerate(directory.accounts):
        if accounts is None or entry.account.account_id in accounts:
            found.extend(_Account(entry, f"accounts[{i}]").run())
    return in_order(found)

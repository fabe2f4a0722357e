"""The plan of an import: the writes that make the database hold the file, only those
that differ, so that running daemons hear of real changes only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from e911d.daemon.commands.directory_file.validation import AccountEntry, DirectoryFile
from e911d.daemon.core.events import DirectoryChange, IpGroupDeleted, LocationDeleted, UserDeleted
from e911d.daemon.store.directory_rows import (
    Form,
    Key,
    Stored,
    ip_group_form,
    location_form,
    user_form,
)

KINDS: Final = ("account", "location", "ip_group", "user")
_CREATE, _UPDATE, _DELETE = "+", "~", "-"


@dataclass(frozen=True, slots=True)
class Step:
    """One write of an import: ``op`` is ``+`` (create), ``~`` (update) or ``-`` (delete)."""

    op: str
    kind: str
    account_id: str
    entity_id: str  # empty for an account
    change: DirectoryChange

    @property
    def line(self) -> str:
        name = f"{self.account_id}/{self.entity_id}" if self.entity_id else self.account_id
        return f"{self.op} {self.kind} {name}"

    @property
    def order(self) -> tuple[str, int, str]:
        return (self.account_id, KINDS.index(self.kind), self.entity_id)


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...]
    unchanged: Mapping[str, int]

    def count(self, kind: str, op: str) -> int:
        return sum(1 for s in self.steps if s.kind == kind and s.op == op)

    def summary(self) -> str:
        parts = []
        for kind in KINDS:
            counts = [
                f"{self.count(kind, _CREATE)} created",
                f"{self.count(kind, _UPDATE)} updated",
                f"{self.unchanged.get(kind, 0)} unchanged",
            ]
            if kind != "account":  # accounts are never deleted by an import
                counts.append(f"{self.count(kind, _DELETE)} deleted")
            parts.append(f"{kind}s: {', '.join(counts)}")
        return "; ".join(parts)


_MISSING: Final = object()


def _op(new: object, old: object) -> str | None:
    if old is _MISSING:
        return _CREATE
    return None if new == old else _UPDATE


def _children(entry: AccountEntry) -> list[tuple[str, str, Form, DirectoryChange]]:
    return [
        *(("location", c.location_id, location_form(c), c) for c in entry.locations),
        *(("ip_group", c.ip_group_id, ip_group_form(c), c) for c in entry.ip_groups),
        *(("user", c.user_id, user_form(c), c) for c in entry.users),
    ]


_DELETIONS: Final[Mapping[str, Callable[[str, str], DirectoryChange]]] = MappingProxyType(
    {"location": LocationDeleted, "ip_group": IpGroupDeleted, "user": UserDeleted}
)


def make_plan(directory: DirectoryFile, stored: Stored, *, prune: bool) -> Plan:
    """The writes that make the database hold the file: only what differs, and with
    ``prune`` the deletion of what the file's accounts hold but the file omits."""
    steps: list[Step] = []
    unchanged: Counter[str] = Counter()
    tables: Mapping[str, Mapping[Key, Form]] = {
        "location": stored.locations,
        "ip_group": stored.ip_groups,
        "user": stored.users,
    }
    for entry in directory.accounts:
        account_id = entry.account.account_id
        op = _op(entry.account.e911_recommendations, stored.accounts.get(account_id, _MISSING))
        if op is None:
            unchanged["account"] += 1
        else:
            steps.append(Step(op, "account", account_id, "", entry.account))
        kept: set[tuple[str, str]] = set()
        for kind, ident, form, change in _children(entry):
            kept.add((kind, ident))
            op = _op(form, tables[kind].get((account_id, ident), _MISSING))
            if op is None:
                unchanged[kind] += 1
            else:
                steps.append(Step(op, kind, account_id, ident, change))
        if prune:
            steps.extend(
                Step(_DELETE, kind, account_id, ident, _DELETIONS[kind](account_id, ident))
                for kind, table in tables.items()
                for owner, ident in table
                if owner == account_id and (kind, ident) not in kept
            )
    return Plan(tuple(sorted(steps, key=lambda s: s.order)), dict(unchanged))

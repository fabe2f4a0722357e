"""Validation of a file's data: every issue at once, each with its path, and for a valid
file the changes its entities make, built by the event structs and the events' own code."""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
import msgspec.inspect as mi

from e911d.consumers.wire import AccountUpsertedData, directory_change, parse_address_at
from e911d.consumers.wire_network import normalize_bssid_at, normalize_switch_id_at
from e911d.daemon.commands.directory_file.fast import bulk_changes, fields_check
from e911d.daemon.commands.directory_file.field_rules import (
    ACCOUNT_INFO,
    CHILDREN,
    IMPLIED,
    IP_GROUPS,
    LOCATIONS,
    NO_DEFAULTS,
    TOGGLE_OFF,
    USERS,
    Issue,
    Kind,
    bounds,
    describe,
    in_bounds,
    key_path,
    path_order,
    string_problem,
    yaml_kind,
)
from e911d.daemon.core.events import (
    AccountUpserted,
    FieldError,
    Invalid,
    IpGroupUpserted,
    LocationUpserted,
    UserUpserted,
)

T = TypeVar("T")
FAST = True  # tests compare both ways


@dataclass(frozen=True, slots=True)
class AccountEntry:
    account: AccountUpserted
    locations: tuple[LocationUpserted, ...]
    ip_groups: tuple[IpGroupUpserted, ...]
    users: tuple[UserUpserted, ...]


@dataclass(frozen=True, slots=True)
class DirectoryFile:
    accounts: tuple[AccountEntry, ...]


@dataclass(frozen=True, slots=True)
class Validated:
    """Either a directory (no issues) or every issue found (no directory)."""

    directory: DirectoryFile | None
    issues: tuple[Issue, ...]


class _Bad:
    """Marks a value that failed its check (``None`` is a valid value)."""


_BAD: Final = _Bad()


def _as(cls: type[T], value: object) -> T:
    if not isinstance(value, cls):
        raise AssertionError(f"expected {cls.__name__}, got {type(value).__name__}")
    return value


@dataclass(slots=True)  # not frozen: a frozen init costs ~1 µs, a quarter of a user's
class _Entity:
    path: str
    raw: Mapping[Any, Any]
    values: Mapping[str, Any]  # the fields that passed their checks
    change: object = None  # built already (fast.bulk_changes)


class _Checker:
    """Walks a file's data and collects every issue instead of stopping at the first.

    Field rules come from the event structs' msgspec types (lengths, patterns, bounds,
    the address limit), so the file and the events cannot drift apart.
    """

    def __init__(
        self, db_locations: Mapping[str, Collection[str]], prune: bool, check_references: bool
    ) -> None:
        self.issues: list[Issue] = []
        self._db_locations = db_locations
        self._prune = prune
        self._check_references = check_references

    def fail(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def refused(self, path: str, error: FieldError) -> None:
        """A value the events' own code refused, at its place within the entity."""
        self.fail(f"{path}.{error.path}", error.message)

    def directory(self, data: object) -> DirectoryFile | None:
        if not isinstance(data, dict):
            what = "the file is empty" if data is None else f"the file holds {describe(data)}"
            self.fail("", f"{what}; expected a mapping with the key 'accounts'")
            return None
        self.keys(data, ("accounts",), "")
        if "accounts" not in data:
            self.fail("", "missing required key 'accounts'")
            return None
        accounts = data["accounts"]
        if not isinstance(accounts, list):
            self.fail("accounts", f"expected a list, got {describe(accounts)}")
            return None
        seen: dict[str, str] = {}
        entries = [self.account(item, f"accounts[{i}]", seen) for i, item in enumerate(accounts)]
        if self.issues:
            return None
        return DirectoryFile(tuple(e for e in entries if e is not None))

    def account(self, value: object, path: str, seen: dict[str, str]) -> AccountEntry | None:
        head = self.fields(
            value, ACCOUNT_INFO, path, defaults=TOGGLE_OFF, extra=[k.key for k in CHILDREN]
        )
        if head is None or not isinstance(value, dict):
            return None
        account_id: str | None = head.get("account_id")
        if account_id is not None:
            self.unique(seen, account_id, f"{path}.account_id", path)
        children = {kind.key: self.entities(value, path, kind, account_id) for kind in CHILDREN}
        for group in children[IP_GROUPS.key]:
            self.addresses(group)
            self.signals(group)
        in_file: set[str] = {
            e.values[LOCATIONS.id_field]
            for e in children[LOCATIONS.key]
            if LOCATIONS.id_field in e.values
        }
        for kind in (IP_GROUPS, USERS):
            for entity in children[kind.key]:
                self.reference(entity, kind, account_id, in_file)
        if self.issues or account_id is None:
            return None
        account = self.build(AccountUpsertedData, {**head}, path)
        built = {
            kind.key: [
                e.change or self.build(kind.struct, {"account_id": account_id, **e.values}, e.path)
                for e in children[kind.key]
            ]
            for kind in CHILDREN
        }
        if self.issues:  # refused by the event structs themselves: nothing to build
            return None
        return AccountEntry(
            _as(AccountUpserted, account),
            tuple(_as(LocationUpserted, c) for c in built[LOCATIONS.key]),
            tuple(_as(IpGroupUpserted, c) for c in built[IP_GROUPS.key]),
            tuple(_as(UserUpserted, c) for c in built[USERS.key]),
        )

    def entities(
        self, account: Mapping[Any, Any], path: str, kind: Kind, account_id: str | None
    ) -> list[_Entity]:
        items = account.get(kind.key, [])
        list_path = f"{path}.{kind.key}"
        bulk = bulk_changes(items, kind, account_id) if FAST and account_id else None
        if bulk is not None:  # valid as a whole: nothing for the walk to word
            pairs = enumerate(zip(items, bulk, strict=True))
            return [_Entity(f"{list_path}[{i}]", item, *built) for i, (item, built) in pairs]
        if not isinstance(items, list):
            self.fail(list_path, f"expected a list, got {describe(items)}")
            return []
        seen: dict[str, str] = {}
        out: list[_Entity] = []
        for i, item in enumerate(items):
            item_path = f"{list_path}[{i}]"
            values = self.fields(item, kind.info, item_path, skip=IMPLIED, defaults=kind.defaults)
            if values is None or not isinstance(item, dict):
                continue
            ident = values.get(kind.id_field)
            if ident is not None:
                self.unique(seen, ident, f"{item_path}.{kind.id_field}", item_path)
            out.append(_Entity(item_path, item, values))
        return out

    def unique(self, seen: dict[str, str], ident: str, id_path: str, where: str) -> None:
        first = seen.setdefault(ident, where)
        if first != where:
            self.fail(id_path, f"duplicate {ident!r} (also at {first})")

    def addresses(self, group: _Entity) -> None:
        """Each item as an event would parse it: address, CIDR or range (exact CIDRs)."""
        items = group.raw.get("addresses")
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            if not isinstance(item, str):
                continue  # already reported as not a string
            parsed = parse_address_at(i, item)
            if isinstance(parsed, FieldError):
                self.refused(group.path, parsed)

    def signals(self, group: _Entity) -> None:
        """Each BSSID and switch as an event would normalise it, every bad one with its path."""
        bssids = group.raw.get("bssids")
        for i, item in enumerate(bssids if isinstance(bssids, list) else ()):
            if isinstance(item, str):  # else already reported as not a string
                bssid = normalize_bssid_at(i, item)
                if isinstance(bssid, FieldError):
                    self.refused(group.path, bssid)
        switches = group.raw.get("switches")
        for i, item in enumerate(switches if isinstance(switches, list) else ()):
            for key in ("chassis_id", "port_id"):
                text = item.get(key) if isinstance(item, dict) else None
                if isinstance(text, str) and text:  # else reported as not an id
                    switch_id = normalize_switch_id_at(i, key, text)
                    if isinstance(switch_id, FieldError):
                        self.refused(group.path, switch_id)

    def reference(
        self, entity: _Entity, kind: Kind, account_id: str | None, in_file: set[str]
    ) -> None:
        field = kind.reference
        if field is None or not self._check_references:
            return
        target = entity.values.get(field)
        if target is None or target in in_file:
            return
        in_db = account_id is not None and target in self._db_locations.get(account_id, ())
        if in_db and not self._prune:
            return
        owner = f"account {account_id!r}" if account_id is not None else "its account"
        message = f"{target!r} names no location of {owner}"
        if in_db:
            message += " in the file (with --prune the database's locations do not count)"
        self.fail(f"{entity.path}.{field}", message)

    def build(self, struct: type[msgspec.Struct], data: dict[str, Any], path: str) -> object:
        """The change an event with this data would make: decoded by the event's own
        struct and converted by the event's own code (a last guard against drift)."""
        try:
            decoded = msgspec.convert(data, struct)
        except msgspec.ValidationError as exc:
            self.fail(path, f"refused by the event schema: {exc}")
            return None
        change = directory_change(decoded)
        if isinstance(change, Invalid):
            if change.error is None:
                self.fail(path, change.detail)
            else:
                self.refused(path, change.error)
            return None
        return change

    # -- fields and values

    def keys(self, mapping: Mapping[Any, Any], allowed: Sequence[str], path: str) -> None:
        for key in dict.fromkeys(getattr(mapping, "duplicates", ())):
            self.fail(key_path(path, key), "key given more than once (only one value can count)")
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                self.fail(key_path(path, key), f"unknown key; {hint}")

    def fields(
        self,
        value: object,
        info: mi.StructType,
        path: str,
        *,
        skip: Collection[str] = frozenset(),
        defaults: Mapping[str, object] = NO_DEFAULTS,
        extra: Sequence[str] = (),
    ) -> dict[str, Any] | None:
        """The fields of a struct that pass their checks; ``None`` if not a mapping."""
        valid = fields_check(info, skip, defaults, extra)(value) if FAST else None
        if valid is not None:  # no issue to find: the walk below would give the same
            return valid
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {describe(value)}")
            return None
        spec = [f for f in info.fields if f.encode_name not in skip]
        self.keys(value, [*(f.encode_name for f in spec), *extra], path)
        sources: Mapping[Any, str] = getattr(value, "sources", {})
        out: dict[str, Any] = {}
        for f in spec:
            name = f.encode_name
            if name not in value:
                if name in defaults:
                    out[name] = defaults[name]
                elif f.required:
                    self.fail(path, f"missing required key {name!r}")
                continue
            checked = self.value(value[name], f.type, key_path(path, name), sources.get(name))
            if checked is not _BAD:
                out[name] = checked
        return out

    def value(self, value: object, t: mi.Type, path: str, source: str | None) -> Any:
        if isinstance(t, mi.Metadata):  # a description for the generated contracts only
            return self.value(value, t.type, path, source)
        if isinstance(t, mi.UnionType):
            if value is None and any(isinstance(m, mi.NoneType) for m in t.types):
                return None
            (inner,) = [m for m in t.types if not isinstance(m, mi.NoneType)]
            return self.value(value, inner, path, source)
        if isinstance(t, mi.StrType):
            return self.string(value, t, path, source)
        if isinstance(t, mi.BoolType):
            return value if isinstance(value, bool) else self.wrong("a boolean", value, path)
        if isinstance(t, mi.FloatType):
            return self.number(value, t, path)
        if isinstance(t, mi.ListType):
            return self.array(value, t, path)
        if isinstance(t, mi.StructType):
            before = len(self.issues)
            values = self.fields(value, t, path)
            return values if values is not None and len(self.issues) == before else _BAD
        raise AssertionError(f"no file check for the event field type {t!r}")

    def wrong(self, expected: str, value: object, path: str, source: str | None = None) -> _Bad:
        hint = ""
        if source is not None:
            hint = f"; YAML reads the unquoted {source} as {yaml_kind(value)}: put it in quotes"
        self.fail(path, f"expected {expected}, got {describe(value)}{hint}")
        return _BAD

    def string(self, value: object, t: mi.StrType, path: str, source: str | None) -> Any:
        if not isinstance(value, str):
            return self.wrong("a string", value, path, source)
        problem = string_problem(value, t)
        if problem is not None:
            self.fail(path, problem)
            return _BAD
        return value

    def number(self, value: object, t: mi.FloatType, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.wrong("a number", value, path)
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"{describe(value)} is not a finite number")
            return _BAD
        if not in_bounds(value, t):
            self.fail(path, f"{describe(value)} is out of range: {bounds(t)}")
            return _BAD
        return value

    def array(self, value: object, t: mi.ListType, path: str) -> Any:
        if not isinstance(value, list):
            return self.wrong("a list", value, path)
        ok = True
        if t.max_length is not None and len(value) > t.max_length:
            self.fail(path, f"has {len(value)} items; the limit is {t.max_length}")
            ok = False
        if t.min_length is not None and len(value) < t.min_length:
            self.fail(path, f"has {len(value)} items; at least {t.min_length} are needed")
            ok = False
        sources: Mapping[int, str] = getattr(value, "sources", {})
        items = [
            self.value(item, t.item_type, f"{path}[{i}]", sources.get(i))
            for i, item in enumerate(value)
        ]
        return items if ok and not any(item is _BAD for item in items) else _BAD


def validate(
    data: object,
    *,
    db_locations: Mapping[str, Collection[str]] | None = None,
    prune: bool = False,
    check_references: bool = True,
) -> Validated:
    """Check a file's data against the event rules and the file's own rules.

    ``db_locations``: the location ids the database holds per account, which a
    reference may name too, except with ``prune`` (the import would delete those
    that the file omits). ``check_references=False`` keeps a reference to a missing
    location instead of refusing it: ``directory lint`` reports those as findings,
    because the database legitimately holds them (directory events arrive in any order).
    """
    checker = _Checker(db_locations or {}, prune, check_references)
    directory = checker.directory(data)
    issues = tuple(sorted(checker.issues, key=lambda issue: path_order(issue.path)))
    return Validated(None if issues else directory, issues)

"""``e911d directory import FILE`` and ``e911d directory export``: the directory as a file.

A file holds the entities of the directory events (SPEC §3.2) and obeys their rules:
every field is checked against the event structs of :mod:`consumers.events`, and each
entity is finally decoded by those structs and turned into a change by the same code
as an event, so a file can never carry what an event could not. On top of that it
does what an operator's hand-written file needs: every error is reported at once with
its path, unknown and repeated keys are refused (a typo must not be silently ignored),
references must name a location, and hostile YAML (anchors, aliases, huge files) is
refused before it costs memory.

An import is one transaction. It writes only the entities that differ from what the
database holds, through the same projector as the events
(:func:`daemon.directory.apply_change`): database triggers tell running daemons about
every write, so an unchanged row must not be written again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import ipaddress
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

import asyncpg
import msgspec
import msgspec.inspect as mi
import structlog
import yaml

from config import Settings
from consumers.events import (
    AccountUpserted,
    AccountUpsertedData,
    DirectoryChange,
    Invalid,
    IpGroupDeleted,
    IpGroupUpserted,
    IpGroupUpsertedData,
    LocationDeleted,
    LocationUpserted,
    LocationUpsertedData,
    UserDeleted,
    UserUpserted,
    UserUpsertedData,
    directory_change,
    parse_address_item,
)
from daemon.db import DatabaseError, PoolConfig, connect_pool, convert, load_queries
from daemon.directory import apply_change
from daemon.model import IPNetwork

log = structlog.get_logger("e911d.directory_file")
SQL = load_queries("directory_file.sql")

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
# A directory of a few hundred thousand users fits easily; beyond this a file is a
# mistake or an attack, and PyYAML would spend minutes and gigabytes on it.
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
FORMATS: Final = MappingProxyType({".yaml": "yaml", ".yml": "yaml", ".json": "json"})
_TABLES: Final = ("accounts", "users", "locations", "ip_groups", "ip_group_networks")


class FileProblem(Exception):
    """The file cannot be read or parsed; the message says why, without the path."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One error in a file: where it is (``accounts[0].users[2].user_id``; empty for
    the whole file) and what is wrong, so an operator can fix every error in one go."""

    path: str
    message: str

    def render(self, source: str) -> str:
        return f"{self.path or source}: {self.message}"


# ---- reading and parsing -------------------------------------------------------------


class _Mapping(dict[Any, Any]):
    """A parsed mapping that keeps what a plain dict forgets: keys given more than once
    (a parser keeps only the last, silently dropping data) and the text of unquoted
    YAML scalars that did not become strings (``postal_code: 01234`` reads as 668)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[Any] = []
        self.sources: dict[Any, str] = {}

    def put(self, key: Any, value: Any, source: str | None = None) -> None:
        if key in self:
            self.duplicates.append(key)
        self[key] = value
        self.sources.pop(key, None)
        if source is not None:
            self.sources[key] = source

    @classmethod
    def from_pairs(cls, pairs: list[tuple[Any, Any]]) -> _Mapping:
        mapping = cls()
        for key, value in pairs:
            mapping.put(key, value)
        return mapping


class _Sequence(list[Any]):
    """A parsed YAML list that keeps the text of its unquoted non-string items."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[int, str] = {}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors, aliases or merge keys.

    An alias is how a few hundred bytes expand into gigabytes ("billion laughs"), and
    a directory file has no use for one: refusing them while composing stops the
    expansion before it starts.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML anchors and aliases (& and *) are not allowed in a directory file",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _plain_source(node: yaml.Node, value: object) -> str | None:
    plain = isinstance(node, yaml.ScalarNode) and node.style is None and node.value != ""
    return str(node.value) if plain and not isinstance(value, str) else None


def _construct_mapping(loader: _Loader, node: yaml.Node) -> _Mapping:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a mapping node", node.start_mark
        )
    mapping = _Mapping()
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise yaml.constructor.ConstructorError(
                None, None, "YAML merge keys (<<) are not allowed", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        value = loader.construct_object(value_node, deep=True)
        mapping.put(key, value, _plain_source(value_node, value))
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.Node) -> _Sequence:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a sequence node", node.start_mark
        )
    sequence = _Sequence()
    for index, item_node in enumerate(node.value):
        value = loader.construct_object(item_node, deep=True)
        sequence.append(value)
        source = _plain_source(item_node, value)
        if source is not None:
            sequence.sources[index] = source
    return sequence


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileProblem(
            f"cannot tell the format from the extension {path.suffix or '(none)'!r}: "
            "use .yaml, .yml or .json"
        )
    return fmt


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.problem and exc.context else ""
        if mark is not None:
            return (
                f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: "
                f"{problem}{context}"
            )
        return f"invalid YAML: {problem}{context}"
    return "invalid YAML: " + " ".join(str(exc).split())


def parse(text: str, fmt: str) -> object:
    """The data of a YAML or JSON text; :class:`FileProblem` says why there is none."""
    try:
        if fmt == "json":
            return json.loads(text, object_pairs_hook=_Mapping.from_pairs)
        return yaml.load(text, Loader=_Loader)  # noqa: S506  a SafeLoader with less
    except json.JSONDecodeError as exc:
        raise FileProblem(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise FileProblem(_yaml_problem(exc)) from None
    except RecursionError:
        raise FileProblem(f"invalid {fmt.upper()}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise FileProblem(f"invalid {fmt.upper()}: {exc}") from None


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n % mib == 0 else f"{n} bytes"


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file as text, refusing more than ``max_bytes`` without reading them all."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise FileProblem(f"the file is larger than the limit of {_size(max_bytes)}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (invalid byte at offset {exc.start})") from None


def load(path: Path, max_bytes: int = MAX_FILE_BYTES) -> object:
    """The data of a directory file, not yet validated."""
    fmt = file_format(path)
    return parse(read_text(path, max_bytes), fmt)


# ---- validation ------------------------------------------------------------------------


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


def _struct_info(struct: type[msgspec.Struct]) -> mi.StructType:
    info = mi.type_info(struct)
    if not isinstance(info, mi.StructType):
        raise TypeError(f"{struct.__name__} is not a struct")
    return info


@dataclass(frozen=True, slots=True)
class _Kind:
    """One list of an account in the file, and the event struct its items obey."""

    key: str
    id_field: str
    struct: type[msgspec.Struct]
    info: mi.StructType
    defaults: Mapping[str, object]
    reference: str | None  # the field naming a location of the account


def _kind(
    key: str,
    id_field: str,
    struct: type[msgspec.Struct],
    defaults: Mapping[str, object],
    reference: str | None,
) -> _Kind:
    return _Kind(key, id_field, struct, _struct_info(struct), defaults, reference)


_NO_DEFAULTS: Final[Mapping[str, object]] = MappingProxyType({})
# The events require the toggles; a file may leave them out (off).
_TOGGLE_OFF: Final[Mapping[str, object]] = MappingProxyType({"e911_recommendations": False})
_LOCATIONS: Final = _kind("locations", "location_id", LocationUpsertedData, _NO_DEFAULTS, None)
_IP_GROUPS: Final = _kind(
    "ip_groups", "ip_group_id", IpGroupUpsertedData, _NO_DEFAULTS, "location_id"
)
_USERS: Final = _kind("users", "user_id", UserUpsertedData, _TOGGLE_OFF, "e911_location_id")
_CHILDREN: Final = (_LOCATIONS, _IP_GROUPS, _USERS)
_ACCOUNT_INFO: Final = _struct_info(AccountUpsertedData)
# account_id is implied by the enclosing account.
_IMPLIED: Final = frozenset({"account_id"})
_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


class _Bad:
    """Marks a value that failed its check (``None`` is a valid value)."""


_BAD: Final = _Bad()


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and value.bit_length() > 128:
        return "a very large number"
    text = (
        repr(value)
        if isinstance(value, str | int | float)
        else f"{value} (a {type(value).__name__})"
    )
    return text if len(text) <= 80 else text[:77] + "..."


def _yaml_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dt.date):
        return "a date"
    return f"a {type(value).__name__}"


def _key(path: str, key: object) -> str:
    if isinstance(key, str) and _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    if isinstance(key, str):
        return f"{path}[{key!r}]"
    return f"{path}.<{_describe(key)}>"  # YAML keys need not be strings


_PATH_PART = re.compile(r"\[(\d+)\]|\[([^\]]*)\]|\.?([^.\[]+)")


def _path_order(path: str) -> list[tuple[int, int, str]]:
    """Issues sorted by where they are: list items by index, keys by name, an
    entity's own issues before those of its fields."""
    order: list[tuple[int, int, str]] = []
    for m in _PATH_PART.finditer(path):
        index, quoted, name = m.groups()
        order.append((0, int(index), "") if index is not None else (1, 0, quoted or name))
    return order


def _string_problem(value: str, t: mi.StrType) -> str | None:
    if t.min_length is not None and len(value) < t.min_length:
        return "must not be empty" if t.min_length == 1 else f"needs {t.min_length}+ characters"
    if t.max_length is not None and len(value) > t.max_length:
        return f"is {len(value)} characters long; the limit is {t.max_length}"
    if t.pattern is not None and not re.search(t.pattern, value):
        bad = next((c for c in value if not re.search(t.pattern, c)), None)
        if bad is not None:
            return f"contains the character {bad!r}, which is not allowed here"
        return f"does not match {t.pattern}"
    return None


def _in_bounds(value: float, t: mi.FloatType) -> bool:
    return (
        (t.ge is None or value >= t.ge)
        and (t.gt is None or value > t.gt)
        and (t.le is None or value <= t.le)
        and (t.lt is None or value < t.lt)
        and (t.multiple_of is None or value % t.multiple_of == 0)
    )


def _bounds(t: mi.FloatType) -> str:
    if t.ge is not None and t.le is not None:
        return f"must be between {t.ge} and {t.le}"
    limits = [
        f"{op} {bound}"
        for op, bound in ((">=", t.ge), (">", t.gt), ("<=", t.le), ("<", t.lt))
        if bound is not None
    ]
    return "must be " + " and ".join(limits or [f"a multiple of {t.multiple_of}"])


def _as(cls: type[T], value: object) -> T:
    if not isinstance(value, cls):
        raise AssertionError(f"expected {cls.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class _Entity:
    path: str
    raw: Mapping[Any, Any]
    values: Mapping[str, Any]  # the fields that passed their checks


class _Checker:
    """Walks a file's data and collects every issue instead of stopping at the first.

    Field rules come from the event structs' msgspec types (lengths, patterns, bounds,
    the address limit), so the file and the events cannot drift apart.
    """

    def __init__(self, db_locations: Mapping[str, Collection[str]], prune: bool) -> None:
        self.issues: list[Issue] = []
        self._db_locations = db_locations
        self._prune = prune

    def fail(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def directory(self, data: object) -> DirectoryFile | None:
        if not isinstance(data, dict):
            what = "the file is empty" if data is None else f"the file holds {_describe(data)}"
            self.fail("", f"{what}; expected a mapping with the key 'accounts'")
            return None
        self.keys(data, ("accounts",), "")
        if "accounts" not in data:
            self.fail("", "missing required key 'accounts'")
            return None
        accounts = data["accounts"]
        if not isinstance(accounts, list):
            self.fail("accounts", f"expected a list, got {_describe(accounts)}")
            return None
        seen: dict[str, str] = {}
        entries = [self.account(item, f"accounts[{i}]", seen) for i, item in enumerate(accounts)]
        if self.issues:
            return None
        return DirectoryFile(tuple(e for e in entries if e is not None))

    def account(self, value: object, path: str, seen: dict[str, str]) -> AccountEntry | None:
        head = self.fields(
            value, _ACCOUNT_INFO, path, defaults=_TOGGLE_OFF, extra=[k.key for k in _CHILDREN]
        )
        if head is None or not isinstance(value, dict):
            return None
        account_id: str | None = head.get("account_id")
        if account_id is not None:
            self.unique(seen, account_id, f"{path}.account_id", path)
        children = {kind.key: self.entities(value, path, kind) for kind in _CHILDREN}
        for group in children[_IP_GROUPS.key]:
            self.addresses(group)
        in_file: set[str] = {
            e.values[_LOCATIONS.id_field]
            for e in children[_LOCATIONS.key]
            if _LOCATIONS.id_field in e.values
        }
        for kind in (_IP_GROUPS, _USERS):
            for entity in children[kind.key]:
                self.reference(entity, kind, account_id, in_file)
        if self.issues or account_id is None:
            return None
        account = self.build(AccountUpsertedData, {**head}, path)
        built = {
            kind.key: [
                self.build(kind.struct, {"account_id": account_id, **e.values}, e.path)
                for e in children[kind.key]
            ]
            for kind in _CHILDREN
        }
        if self.issues:  # refused by the event structs themselves: nothing to build
            return None
        return AccountEntry(
            _as(AccountUpserted, account),
            tuple(_as(LocationUpserted, c) for c in built[_LOCATIONS.key]),
            tuple(_as(IpGroupUpserted, c) for c in built[_IP_GROUPS.key]),
            tuple(_as(UserUpserted, c) for c in built[_USERS.key]),
        )

    def entities(self, account: Mapping[Any, Any], path: str, kind: _Kind) -> list[_Entity]:
        items = account.get(kind.key, [])
        list_path = f"{path}.{kind.key}"
        if not isinstance(items, list):
            self.fail(list_path, f"expected a list, got {_describe(items)}")
            return []
        seen: dict[str, str] = {}
        out: list[_Entity] = []
        for i, item in enumerate(items):
            item_path = f"{list_path}[{i}]"
            values = self.fields(item, kind.info, item_path, skip=_IMPLIED, defaults=kind.defaults)
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
            try:
                parse_address_item(item)
            except ValueError as exc:
                self.fail(f"{group.path}.addresses[{i}]", str(exc))

    def reference(
        self, entity: _Entity, kind: _Kind, account_id: str | None, in_file: set[str]
    ) -> None:
        field = kind.reference
        target = entity.values.get(field) if field else None
        if field is None or target is None or target in in_file:
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
            self.fail(path, change.detail)
            return None
        return change

    # -- fields and values

    def keys(self, mapping: Mapping[Any, Any], allowed: Sequence[str], path: str) -> None:
        for key in dict.fromkeys(getattr(mapping, "duplicates", ())):
            self.fail(_key(path, key), "key given more than once (only one value can count)")
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                self.fail(_key(path, key), f"unknown key; {hint}")

    def fields(
        self,
        value: object,
        info: mi.StructType,
        path: str,
        *,
        skip: Collection[str] = frozenset(),
        defaults: Mapping[str, object] = _NO_DEFAULTS,
        extra: Sequence[str] = (),
    ) -> dict[str, Any] | None:
        """The fields of a struct that pass their checks; ``None`` if not a mapping."""
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_describe(value)}")
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
            checked = self.value(value[name], f.type, _key(path, name), sources.get(name))
            if checked is not _BAD:
                out[name] = checked
        return out

    def value(self, value: object, t: mi.Type, path: str, source: str | None) -> Any:
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
            hint = f"; YAML reads the unquoted {source} as {_yaml_kind(value)}: put it in quotes"
        self.fail(path, f"expected {expected}, got {_describe(value)}{hint}")
        return _BAD

    def string(self, value: object, t: mi.StrType, path: str, source: str | None) -> Any:
        if not isinstance(value, str):
            return self.wrong("a string", value, path, source)
        problem = _string_problem(value, t)
        if problem is not None:
            self.fail(path, problem)
            return _BAD
        return value

    def number(self, value: object, t: mi.FloatType, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.wrong("a number", value, path)
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"{_describe(value)} is not a finite number")
            return _BAD
        if not _in_bounds(value, t):
            self.fail(path, f"{_describe(value)} is out of range: {_bounds(t)}")
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
) -> Validated:
    """Check a file's data against the event rules and the file's own rules.

    ``db_locations``: the location ids the database holds per account, which a
    reference may name too, except with ``prune`` (the import would delete those
    that the file omits).
    """
    checker = _Checker(db_locations or {}, prune)
    directory = checker.directory(data)
    issues = tuple(sorted(checker.issues, key=lambda issue: _path_order(issue.path)))
    return Validated(None if issues else directory, issues)


def account_ids(data: object) -> list[str]:
    """The account ids a file names, as far as they can be read before validation:
    the import loads their database state first, to check references against it."""
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list):
        return []
    return sorted(
        {
            a["account_id"]
            for a in data["accounts"]
            if isinstance(a, dict) and isinstance(a.get("account_id"), str)
        }
    )


# ---- what the database holds ------------------------------------------------------------

Row = dict[str, Any]
Key = tuple[str, str]
Form = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Rows:
    """The directory rows of some accounts (or of all), as the database holds them."""

    accounts: tuple[Row, ...]
    locations: tuple[Row, ...]
    ip_groups: tuple[Row, ...]
    networks: tuple[Row, ...]
    users: tuple[Row, ...]

    def group_networks(self) -> dict[Key, frozenset[IPNetwork]]:
        out: dict[Key, set[IPNetwork]] = {}
        for r in self.networks:
            key = (r["account_id"], r["ip_group_id"])
            out.setdefault(key, set()).add(ipaddress.ip_network(r["network"]))
        return {key: frozenset(nets) for key, nets in out.items()}

    def group_addresses(self) -> dict[Key, tuple[str, ...]]:
        """Each group's addresses as given, or, for a group whose writer filled in only
        its networks (another system's SQL), those networks: the projector's own
        fallback, so that an export of such a group keeps its networks."""
        networks = self.group_networks()
        out: dict[Key, tuple[str, ...]] = {}
        for r in self.ip_groups:
            key = (r["account_id"], r["ip_group_id"])
            fallback = sorted(networks.get(key, ()), key=lambda n: (n.version, n))
            out[key] = tuple(r["addresses"]) or tuple(str(n) for n in fallback)
        return out


async def read_rows(conn: asyncpg.Connection, accounts: Sequence[str] | None) -> Rows:
    """``accounts=None`` reads every account."""
    ids = None if accounts is None else list(accounts)

    async def fetch(name: str) -> tuple[Row, ...]:
        return tuple(dict(r) for r in await conn.fetch(SQL[name], ids))

    return Rows(
        await fetch("accounts"),
        await fetch("locations"),
        await fetch("ip_groups"),
        await fetch("ip_group_networks"),
        await fetch("users"),
    )


def _location_form(change: LocationUpserted) -> Form:
    coords = change.coordinates
    return (
        change.name,
        msgspec.to_builtins(change.address),
        None if coords is None else coords.lat,
        None if coords is None else coords.lon,
    )


def _ip_group_form(change: IpGroupUpserted) -> Form:
    return (change.name, change.location_id, change.addresses, frozenset(change.networks))


def _user_form(change: UserUpserted) -> Form:
    return (change.e911_recommendations, change.e911_location_id)


@dataclass(frozen=True, slots=True)
class Stored:
    """The database's directory in the forms the file's entities are compared in:
    what the projector would write for an entity equals what it finds there."""

    accounts: Mapping[str, bool]
    locations: Mapping[Key, Form]
    ip_groups: Mapping[Key, Form]
    users: Mapping[Key, Form]

    @classmethod
    def of(cls, rows: Rows) -> Stored:
        networks = rows.group_networks()
        addresses = rows.group_addresses()
        return cls(
            accounts={r["account_id"]: r["e911_recommendations"] for r in rows.accounts},
            locations={
                (r["account_id"], r["location_id"]): (r["name"], r["address"], r["lat"], r["lon"])
                for r in rows.locations
            },
            ip_groups={
                (k := (r["account_id"], r["ip_group_id"])): (
                    r["name"],
                    r["location_id"],
                    addresses[k],
                    networks.get(k, frozenset()),
                )
                for r in rows.ip_groups
            },
            users={
                (r["account_id"], r["user_id"]): (r["e911_recommendations"], r["e911_location_id"])
                for r in rows.users
            },
        )

    def location_ids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for account_id, location_id in self.locations:
            out.setdefault(account_id, set()).add(location_id)
        return out


# ---- the plan ------------------------------------------------------------------------------

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
        *(("location", c.location_id, _location_form(c), c) for c in entry.locations),
        *(("ip_group", c.ip_group_id, _ip_group_form(c), c) for c in entry.ip_groups),
        *(("user", c.user_id, _user_form(c), c) for c in entry.users),
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


# ---- export ----------------------------------------------------------------------------------

_ADDRESS_ORDER: Final = ("street", "city", "region", "postal_code", "country")


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


def _ip_group_doc(r: Row, addresses: Sequence[str]) -> dict[str, Any]:
    return {
        "ip_group_id": r["ip_group_id"],
        "name": r["name"],
        "location_id": r["location_id"],
        "addresses": list(addresses),
    }


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


# ---- the commands -------------------------------------------------------------------------------


def _err(line: str) -> None:
    print(line, file=sys.stderr)


async def _require_schema(conn: asyncpg.Connection) -> None:
    missing = [r["name"] for r in await conn.fetch(SQL["missing_tables"], list(_TABLES))]
    if missing:
        raise DatabaseError(
            f"this database has no e911d directory tables ({', '.join(missing)} missing): "
            "run `e911d migrate` first",
            transient=False,
        )


async def _in_database(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on one connection; driver errors become :class:`DatabaseError`,
    which the CLI prints in one line (exit 1)."""
    pg = settings.postgres
    pool = await connect_pool(
        PoolConfig(pg.dsn.get_secret_value(), 1, 1, pg.command_timeout_seconds), attempts=5
    )
    try:
        async with pool.acquire() as conn:
            await _require_schema(conn)
            return await work(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise convert(exc) from exc
    finally:
        await pool.close()


async def _import(
    conn: asyncpg.Connection, data: object, *, dry_run: bool, prune: bool
) -> Validated | Plan:
    """Validate against the database and apply, in one transaction: all or nothing.

    Repeatable read: the plan is computed from one snapshot, and a concurrent write to
    a row the plan rewrites fails the import instead of being overwritten unseen.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=dry_run):
        stored = Stored.of(await read_rows(conn, account_ids(data)))
        checked = validate(data, db_locations=stored.location_ids(), prune=prune)
        if checked.directory is None:
            return checked
        plan = make_plan(checked.directory, stored, prune=prune)
        if not dry_run:
            for step in plan.steps:
                await apply_change(conn, step.change)
        return plan


async def import_command(settings: Settings, path: Path, *, dry_run: bool, prune: bool) -> int:
    """Exit 0 when applied (or, with ``dry_run``, when it would apply), 1 when the file
    is invalid (every error on stderr, nothing written)."""
    try:
        data = await asyncio.to_thread(load, path)
    except FileProblem as exc:
        _err(f"{path}: {exc}")
        _err(f"e911d: {path} is invalid; nothing was written")
        return EXIT_FAILED
    outcome = await _in_database(
        settings, lambda conn: _import(conn, data, dry_run=dry_run, prune=prune)
    )
    if isinstance(outcome, Validated):
        for issue in outcome.issues:
            _err(issue.render(str(path)))
        n = len(outcome.issues)
        _err(f"e911d: {path} is invalid ({n} error{'s' if n != 1 else ''}); nothing was written")
        return EXIT_FAILED
    for step in outcome.steps:
        print(step.line)
    n = len(outcome.steps)
    changes = f"{n} change{'s' if n != 1 else ''}"
    if dry_run:
        print(f"{outcome.summary()}; dry run: would apply {changes}, nothing written")
    else:
        print(f"{outcome.summary()}; applied {changes}")
        if n:  # an audit trail of writes, next to the daemon's own logs
            log.info("directory_imported", file=str(path), changes=n, prune=prune)
    return EXIT_OK


async def _snapshot(conn: asyncpg.Connection, accounts: Sequence[str] | None) -> Rows:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await read_rows(conn, accounts)


def _export_warnings(exported: Exported) -> list[str]:
    lines = []
    if exported.orphans:
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(exported.orphans.items()))
        lines.append(
            f"e911d: warning: skipped the rows of {len(exported.orphan_accounts)} account id(s) "
            f"that have no accounts row ({counts})"
        )
    if exported.dangling:
        lines.append(
            f"e911d: warning: {len(exported.dangling)} reference(s) name no location of "
            f"their account (first: {exported.dangling[0]}); an import of this file "
            "refuses them until they are fixed"
        )
    return lines


async def export_command(
    settings: Settings, *, accounts: list[str], fmt: str, output: Path | None
) -> int:
    if fmt not in ("yaml", "json"):
        _err(f"e911d: unknown format {fmt!r}: use yaml or json")
        return EXIT_FAILED
    wanted = sorted(set(accounts)) or None
    rows = await _in_database(settings, lambda conn: _snapshot(conn, wanted))
    present = {r["account_id"] for r in rows.accounts}
    unknown = [a for a in wanted or () if a not in present]
    if unknown:
        for account_id in unknown:
            _err(f"e911d: no account {account_id!r} in the database")
        return EXIT_FAILED
    exported = export_document(rows)
    for line in _export_warnings(exported):
        _err(line)
    data = render(exported.document, fmt).encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    try:
        await asyncio.to_thread(output.write_bytes, data)
    except OSError as exc:
        _err(f"e911d: cannot write {output}: {exc.strerror or exc}")
        return EXIT_FAILED
    _err(f"e911d: exported {len(exported.document['accounts'])} account(s) to {output}")
    return EXIT_OK

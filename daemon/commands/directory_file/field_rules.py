"""The rules a file's entities obey, read off the event structs of
:mod:`consumers.wire` so that the file and the events cannot drift apart, and the
wording of a broken rule: an :class:`Issue` with its path, sorted by where it is."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import msgspec
import msgspec.inspect as mi

from e911d.consumers.wire import (
    AccountUpsertedData,
    IpGroupUpsertedData,
    LocationUpsertedData,
    UserUpsertedData,
)


@dataclass(frozen=True, slots=True)
class Issue:
    """One error in a file: where it is (``accounts[0].users[2].user_id``; empty for
    the whole file) and what is wrong, so an operator can fix every error in one go."""

    path: str
    message: str

    def render(self, source: str) -> str:
        return f"{self.path or source}: {self.message}"


def _struct_info(struct: type[msgspec.Struct]) -> mi.StructType:
    info = mi.type_info(struct)
    if not isinstance(info, mi.StructType):
        raise TypeError(f"{struct.__name__} is not a struct")
    return info


@dataclass(frozen=True, slots=True)
class Kind:
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
) -> Kind:
    return Kind(key, id_field, struct, _struct_info(struct), defaults, reference)


NO_DEFAULTS: Final[Mapping[str, object]] = MappingProxyType({})
# The events require the toggles; a file may leave them out (off).
TOGGLE_OFF: Final[Mapping[str, object]] = MappingProxyType({"e911_recommendations": False})
LOCATIONS: Final = _kind("locations", "location_id", LocationUpsertedData, NO_DEFAULTS, None)
IP_GROUPS: Final = _kind(
    "ip_groups", "ip_group_id", IpGroupUpsertedData, NO_DEFAULTS, "location_id"
)
USERS: Final = _kind("users", "user_id", UserUpsertedData, TOGGLE_OFF, "e911_location_id")
CHILDREN: Final = (LOCATIONS, IP_GROUPS, USERS)
ACCOUNT_INFO: Final = _struct_info(AccountUpsertedData)
# account_id is implied by the enclosing account.
IMPLIED: Final = frozenset({"account_id"})
_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


def describe(value: object) -> str:
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


def yaml_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dt.date):
        return "a date"
    return f"a {type(value).__name__}"


def key_path(path: str, key: object) -> str:
    if isinstance(key, str) and _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    if isinstance(key, str):
        return f"{path}[{key!r}]"
    return f"{path}.<{describe(key)}>"  # YAML keys need not be strings


_PATH_PART = re.compile(r"\[(\d+)\]|\[([^\]]*)\]|\.?([^.\[]+)")


def path_order(path: str) -> list[tuple[int, int, str]]:
    """Issues sorted by where they are: list items by index, keys by name, an
    entity's own issues before those of its fields."""
    order: list[tuple[int, int, str]] = []
    for m in _PATH_PART.finditer(path):
        index, quoted, name = m.groups()
        order.append((0, int(index), "") if index is not None else (1, 0, quoted or name))
    return order


def string_problem(value: str, t: mi.StrType) -> str | None:
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


def in_bounds(value: float, t: mi.FloatType) -> bool:
    return (
        (t.ge is None or value >= t.ge)
        and (t.gt is None or value > t.gt)
        and (t.le is None or value <= t.le)
        and (t.lt is None or value < t.lt)
        and (t.multiple_of is None or value % t.multiple_of == 0)
    )


def bounds(t: mi.FloatType) -> str:
    if t.ge is not None and t.le is not None:
        return f"must be between {t.ge} and {t.le}"
    limits = [
        f"{op} {bound}"
        for op, bound in ((">=", t.ge), (">", t.gt), ("<=", t.le), ("<", t.lt))
        if bound is not None
    ]
    return "must be " + " and ".join(limits or [f"a multiple of {t.multiple_of}"])

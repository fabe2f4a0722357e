"""The field checks of :mod:`.validation`, compiled once per struct into plain closures
that only say "valid, and here are the values" or "not sure".

A directory of 250,000 users is a million field checks; the checker's walk builds a
path and looks up the rule for each of them, which is most of an import's (and a
lint's) time. A compiled check mirrors the walk branch by branch (the same msgspec
type information, the same :func:`.rules.string_problem` limits, the same bounds) but
answers ``None`` at the first doubt: the walk then runs as before and words every
issue with its path. So it can change how fast a valid entity is accepted, never what
is accepted or what an invalid one is told.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from e911d.consumers.wire import directory_change
from e911d.daemon.commands.directory_file.field_rules import IMPLIED, Kind, in_bounds
from e911d.daemon.core.events import DirectoryChange, Invalid

# What a check gives back for a valid value: the value as the walk would keep it.
# ``_NO`` means "not sure" (``None`` is a valid value).
_NO: Final = object()
Check = Callable[[object], Any]


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _string(t: mi.StrType) -> Check:
    lo, hi = t.min_length, t.max_length
    pattern = None if t.pattern is None else _pattern(t.pattern)

    def check(value: object) -> Any:
        if not isinstance(value, str):
            return _NO
        if (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi):
            return _NO
        if pattern is not None and not pattern.search(value):
            return _NO
        return value

    return check


def _number(t: mi.FloatType) -> Check:
    def check(value: object) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _NO
        if isinstance(value, float) and not math.isfinite(value):
            return _NO
        return value if in_bounds(value, t) else _NO

    return check


def _boolean(value: object) -> Any:
    return value if isinstance(value, bool) else _NO


def _list(t: mi.ListType) -> Check:
    item = compile_type(t.item_type)
    lo, hi = t.min_length, t.max_length

    def check(value: object) -> Any:
        if not isinstance(value, list):
            return _NO
        if (hi is not None and len(value) > hi) or (lo is not None and len(value) < lo):
            return _NO
        out = [item(v) for v in value]
        return _NO if any(v is _NO for v in out) else out

    return check


def _optional(inner: Check) -> Check:
    def check(value: object) -> Any:
        return None if value is None else inner(value)

    return check


def compile_type(t: mi.Type) -> Check:
    """The check of one field's type, as :meth:`.validation._Checker.value` walks it."""
    if isinstance(t, mi.Metadata):
        return compile_type(t.type)
    if isinstance(t, mi.UnionType):
        (inner,) = [m for m in t.types if not isinstance(m, mi.NoneType)]
        check = compile_type(inner)
        return _optional(check) if any(isinstance(m, mi.NoneType) for m in t.types) else check
    if isinstance(t, mi.StrType):
        return _string(t)
    if isinstance(t, mi.BoolType):
        return _boolean
    if isinstance(t, mi.FloatType):
        return _number(t)
    if isinstance(t, mi.ListType):
        return _list(t)
    if isinstance(t, mi.StructType):
        fields = compile_fields(t, frozenset(), (), ())
        return lambda value: _NO if (out := fields(value)) is None else out
    raise AssertionError(f"no file check for the event field type {t!r}")


def compile_fields(
    info: mi.StructType,
    skip: Collection[str],
    defaults: Sequence[tuple[str, object]],
    extra: Sequence[str],
) -> Callable[[object], dict[str, Any] | None]:
    """The values :meth:`.validation._Checker.fields` would give a mapping that raises no
    issue, or ``None`` when it might raise one."""
    spec = [
        (f.encode_name, compile_type(f.type), f.required)
        for f in info.fields
        if f.encode_name not in skip
    ]
    allowed = frozenset([*(name for name, _, _ in spec), *extra])
    given_defaults = dict(defaults)

    def check(value: object) -> dict[str, Any] | None:
        if not isinstance(value, dict) or getattr(value, "duplicates", None):
            return None
        if not allowed.issuperset(value):
            return None
        out: dict[str, Any] = {}
        for name, field_check, required in spec:
            if name not in value:
                if name in given_defaults:
                    out[name] = given_defaults[name]
                elif required:
                    return None
                continue
            checked = field_check(value[name])
            if checked is _NO:
                return None
            out[name] = checked
        return out

    return check


_FieldsCheck = Callable[[object], dict[str, Any] | None]
# Keyed by the identity of the arguments (msgspec's type info is not hashable, and
# they are the same module constants every time); each entry keeps them alive, so an
# id is never reused for another object while its entry exists.
_COMPILED: dict[tuple[object, ...], tuple[tuple[object, ...], _FieldsCheck]] = {}


def fields_check(
    info: mi.StructType,
    skip: Collection[str],
    defaults: Mapping[str, object],
    extra: Sequence[str],
) -> Callable[[object], dict[str, Any] | None]:
    """The compiled check for these arguments of ``fields``, compiled once."""
    key = (id(info), id(skip), id(defaults), *extra)
    hit = _COMPILED.get(key)
    if hit is None:
        check = compile_fields(info, skip, tuple(defaults.items()), extra)
        hit = _COMPILED[key] = ((info, skip, defaults), check)
    return hit[1]


def _scalar(t: mi.Type) -> bool:
    """A field msgspec checks exactly as the walk does: no nested mapping, whose
    unknown keys msgspec would ignore where the walk refuses them."""
    if isinstance(t, mi.Metadata):
        return _scalar(t.type)
    if isinstance(t, mi.UnionType):
        return all(_scalar(m) for m in t.types)
    if isinstance(t, mi.ListType):
        return _scalar(t.item_type)
    return isinstance(t, mi.StrType | mi.BoolType | mi.FloatType | mi.NoneType)


_Plan = tuple[frozenset[str], dict[str, object], Any] | None
_PLANS: dict[str, _Plan] = {}


def _bulk_plan(kind: Kind) -> _Plan:
    """The keys an item may have and the list type msgspec converts a whole list to,
    for a kind whose every field is flat; ``None`` for the others. Kinds are module
    constants, one per list key."""
    if kind.key not in _PLANS:
        fields = [f for f in kind.info.fields if f.encode_name not in IMPLIED]
        flat = all(_scalar(f.type) for f in fields)
        keys = frozenset(f.encode_name for f in fields)
        plan = (keys, dict(kind.defaults), list[kind.struct])  # type: ignore[name-defined]
        _PLANS[kind.key] = plan if flat else None
    return _PLANS[kind.key]


def bulk_changes(
    items: object, kind: Kind, account_id: str
) -> list[tuple[dict[str, Any], DirectoryChange]] | None:
    """Every item of a flat kind (users: 97 % of a large directory) checked and built in
    one msgspec call, with each item's values as the walk would keep them; ``None`` at
    the first doubt (any issue at all, a duplicate id included): the walk then runs and
    words every issue. ~5 µs an item instead of ~19 (benchmarks/README.md, lint)."""
    plan = _bulk_plan(kind)
    if plan is None or not isinstance(items, list):
        return None
    allowed, defaults, list_type = plan
    values: list[dict[str, Any]] = []
    for item in items:
        if type(item) is not dict and (
            not isinstance(item, dict) or getattr(item, "duplicates", None)
        ):
            return None
        if not allowed.issuperset(item):
            return None
        values.append({**defaults, **item, "account_id": account_id})
    try:
        decoded = msgspec.convert(values, list_type)
    except msgspec.ValidationError:
        return None
    if len({v[kind.id_field] for v in values}) != len(values):  # ids are strings now
        return None
    changes = [directory_change(d) for d in decoded]
    if any(isinstance(c, Invalid) for c in changes):
        return None
    return list(zip(values, changes, strict=True))  # type: ignore[arg-type]

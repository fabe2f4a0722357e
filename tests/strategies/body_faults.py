"""One or two faults in an otherwise good body, each with the reason it must be refused with.

One fault means exactly one reason; two faults, always in different places, accept
either fault's reason: their precedence is not part of the contract (docs/spec.md#dead-letters).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from e911d.daemon.core.events import DirectoryEventKind, InvalidReason, SessionEventKind
from tests.strategies.encoding import _sized, styles
from tests.strategies.good_events import (
    _KIND_ORDER,
    _LATS,
    _LONS,
    ABSENT,
    ADDRESS_DETAILS,
    ADDRESS_FIELDS,
    ADDRESS_REQUIRED,
    DIRECTORY_FIELDS,
    OPTIONAL_FIELDS,
    SESSION_FIELDS,
    Built,
    _with_addresses,
    good_built,
)
from tests.strategies.ips import invalid_address_items, invalid_ips
from tests.strategies.tags import MAX_EVENT_BYTES, SESSION, Bad, R, Tagged, _bad
from tests.strategies.text import _ANY_CHARS, _C0, _NAME_REFUSED, _long_text, non_string_json
from tests.strategies.times import invalid_times


@dataclass(frozen=True, slots=True)
class Fault:
    label: str
    path: tuple[str, ...]
    value: Any  # ABSENT removes the key
    reasons: frozenset[InvalidReason]
    also: tuple[tuple[str, Any], ...] = ()  # top-level attributes added with it


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _apply(body: dict[str, Any], fault: Fault) -> None:
    node = body
    for step in fault.path[:-1]:
        node = node[step]
    if fault.value is ABSENT:
        node.pop(fault.path[-1], None)
    else:
        node[fault.path[-1]] = fault.value
    body.update(fault.also)


@st.composite
def _control_char_in(draw: st.DrawFn, text: str, refused: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(refused)) + text[at:]


@st.composite
def _broken_value(draw: st.DrawFn, kind: str, current: Any) -> Any:
    """A wrong value for a data field of the given kind: (label, value, reason)."""
    wrong_type = st.tuples(st.just("wrong_type"), non_string_json, st.just(R.INVALID_DATA))
    if kind in ("id", "id?"):
        base = current if isinstance(current, str) and current else "x"
        return draw(
            st.one_of(
                wrong_type.filter(lambda t: kind == "id" or t[1] is not None),
                st.tuples(st.just("empty_id"), st.just(""), st.just(R.INVALID_DATA)),
                st.tuples(st.just("huge_id"), _long_text(257, 20_000), st.just(R.INVALID_DATA)),
                st.tuples(
                    st.just("control_char_id"),
                    _control_char_in(base, _C0),
                    st.just(R.INVALID_DATA),
                ),
            )
        )
    if kind in ("name", "name1"):
        base = current if isinstance(current, str) else "x"
        options = [
            wrong_type,
            st.tuples(st.just("huge_name"), _long_text(513, 20_000), st.just(R.INVALID_DATA)),
            st.tuples(
                st.just("control_char_name"),
                _control_char_in(base, _NAME_REFUSED),
                st.just(R.INVALID_DATA),
            ),
        ]
        if kind == "name1":
            options.append(st.tuples(st.just("empty_name"), st.just(""), st.just(R.INVALID_DATA)))
        return draw(st.one_of(options))
    if kind == "ip":
        return draw(
            st.one_of(
                wrong_type,
                st.tuples(st.just("invalid_ip"), invalid_ips(), st.just(R.INVALID_IP)),
            )
        )
    if kind == "bool":
        not_bool = st.one_of(
            st.none(),
            st.integers(-2, 2),
            st.floats(allow_nan=False),
            st.sampled_from(["true", "false", "", "yes"]),
            st.lists(st.booleans(), max_size=2),
            st.just({"value": True}),
        )
        return "wrong_type", draw(not_bool), R.INVALID_DATA
    if kind == "via":
        bad_via = st.one_of(
            non_string_json,
            st.sampled_from(["", "Console", "APP", "app ", " console", "phone", "\u0430pp"]),
            st.text(max_size=10).filter(lambda s: s not in ("console", "app")),
        )
        return "bad_changed_via", draw(bad_via), R.INVALID_DATA
    if kind == "address":
        shapes = ["not_object", "missing", "sub_wrong_type", "sub_name", "detail"]
        shape = draw(st.sampled_from(shapes))
        address = dict(current)
        if shape == "detail":  # building, floor, unit: short strings, or null
            detail = draw(st.sampled_from(ADDRESS_DETAILS))
            label, address[detail] = draw(
                st.one_of(
                    st.tuples(
                        st.just("address_detail_wrong_type"),
                        non_string_json.filter(lambda v: v is not None),
                    ),
                    st.tuples(
                        st.just("address_detail_too_long"),
                        st.text(min_size=101, max_size=300).filter(lambda v: len(v) > 100),
                    ),
                    st.tuples(
                        st.just("address_detail_control_character"),
                        st.sampled_from(["Floor\n3", "3\t", "\x00", "Suite\x1b[2J", "\x7f"]),
                    ),
                )
            )
            return label, address, R.INVALID_DATA
        if shape == "not_object":
            return "address_not_object", draw(non_string_json.filter(_not_dict)), R.INVALID_DATA
        if shape == "missing":
            address.pop(draw(st.sampled_from(ADDRESS_REQUIRED)))
            return "address_missing_field", address, R.INVALID_DATA
        field = draw(st.sampled_from(ADDRESS_FIELDS))
        if shape == "sub_wrong_type":
            address[field] = draw(non_string_json)
            return "address_wrong_type", address, R.INVALID_DATA
        label, address[field], reason = draw(_broken_value("name", address.get(field, "")))
        return f"address_{label}", address, reason
    if kind == "coords?":
        shape = draw(st.sampled_from(["not_object", "range", "missing", "wrong_type"]))
        if shape == "not_object":
            value = draw(non_string_json.filter(lambda v: v is not None and _not_dict(v)))
            return "coordinates_not_object", value, R.INVALID_DATA
        coords: dict[str, Any] = {"lat": draw(_LATS), "lon": draw(_LONS)}
        if shape == "range":
            coords[draw(st.sampled_from(["lat", "lon"]))] = draw(
                st.one_of(
                    st.floats(min_value=180, exclude_min=True, allow_infinity=False),
                    st.floats(max_value=-180, exclude_max=True, allow_infinity=False),
                    st.sampled_from([90.000001, -90.0000001, 1e308, -1e308]),
                )
            )
            if abs(coords["lon"]) <= 180 and abs(coords["lat"]) <= 90:
                coords["lat"] = 91
            return "coordinates_out_of_range", coords, R.INVALID_DATA
        field = draw(st.sampled_from(["lat", "lon"]))
        if shape == "missing":
            del coords[field]
            return "coordinates_missing_field", coords, R.INVALID_DATA
        coords[field] = draw(
            st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.lists(st.integers()))
        )
        return "coordinates_wrong_type", coords, R.INVALID_DATA
    # addresses
    shape = draw(st.sampled_from(["not_list", "item_type", "invalid_item", "invalid_item"]))
    items = list(current)
    if shape == "not_list":
        value = draw(
            st.one_of(st.none(), st.text(max_size=20), st.integers(), st.just({"a": "10.0.0.0/8"}))
        )
        return "addresses_not_list", value, R.INVALID_DATA
    at = draw(st.integers(0, len(items)))
    if shape == "item_type":
        items.insert(at, draw(non_string_json))
        return "addresses_item_wrong_type", items, R.INVALID_DATA
    items.insert(at, draw(invalid_address_items()))
    return "invalid_address_item", items, R.INVALID_IP


def _not_dict(value: Any) -> bool:
    return not isinstance(value, dict)


@st.composite
def faults(draw: st.DrawFn, built: Built) -> Fault:
    """One thing wrong with a good body, and the reason it must be refused with."""
    body = built.body
    session = built.topic == SESSION
    data: dict[str, Any] = body["data"]
    fields = (SESSION_FIELDS if session else DIRECTORY_FIELDS)[body["type"]]
    own_types = [k.value for k in (SessionEventKind if session else DirectoryEventKind)]
    other_types = [k.value for k in (DirectoryEventKind if session else SessionEventKind)]
    # Weighted towards the data, where the types differ most (Hypothesis also favours
    # the first entries of a list).
    families = [
        *["field_value"] * 5,
        *["missing_field", "time_value", "unknown_type"] * 2,
        "data_not_object",
        "missing_attribute",
        "renamed_attribute",
        "specversion",
        "attribute_type",
        "attribute_bounds",
        "time_type",
        "datacontenttype",
    ]
    family = draw(st.sampled_from(families))
    nce = _bad(R.NOT_CLOUDEVENT)
    if family in ("missing_attribute", "renamed_attribute"):
        attr = draw(st.sampled_from(["data", "type", "source", "id", "specversion"]))
        if family == "renamed_attribute":
            # The value moves to a look-alike (so unknown, ignored) attribute.
            alias = draw(st.sampled_from([attr.upper(), attr.title(), f"{attr}_", f"ce_{attr}"]))
            return Fault(f"renamed_{attr}", (attr,), ABSENT, nce, ((alias, body[attr]),))
        return Fault(f"missing_{attr}", (attr,), ABSENT, nce)
    if family == "specversion":
        value = draw(
            st.one_of(
                st.sampled_from(["0.3", "1", "1.0.0", " 1.0", "1.0\n", "", "v1.0", "2.0", "1,0"]),
                non_string_json,
                st.just(1.0),
            )
        )
        return Fault("bad_specversion", ("specversion",), value, nce)
    if family == "attribute_type":
        attr = draw(st.sampled_from(["id", "source", "type"]))
        return Fault(f"{attr}_wrong_type", (attr,), draw(non_string_json), nce)
    if family == "attribute_bounds":
        attr, limit = draw(st.sampled_from([("id", 512), ("source", 2048), ("type", 256)]))
        value = draw(st.one_of(st.just(""), _long_text(limit + 1, limit + 20_000)))
        return Fault(f"{attr}_{'empty' if not value else 'too_long'}", (attr,), value, nce)
    if family == "time_type":
        value = draw(non_string_json.filter(lambda v: v is not None))
        return Fault("time_wrong_type", ("time",), value, nce)
    if family == "datacontenttype":
        value = draw(
            st.one_of(
                st.sampled_from(
                    ["text/plain", "application/xml", "", "json", "*/*", "application/json-seq"]
                ),
                non_string_json.filter(lambda v: v is not None),
            )
        )
        return Fault("bad_datacontenttype", ("datacontenttype",), value, nce)
    if family == "unknown_type":
        value = draw(
            st.one_of(
                st.sampled_from(other_types),
                st.sampled_from(own_types).map(str.upper),
                st.sampled_from(own_types).map(lambda t: t + " "),
                st.sampled_from(own_types).map(lambda t: t.replace(".", "_")),
                st.text(_ANY_CHARS, min_size=1, max_size=40).filter(lambda t: t not in own_types),
                _long_text(100, 256),
            )
        )
        return Fault("unknown_type", ("type",), value, _bad(R.UNKNOWN_TYPE))
    if family == "data_not_object":
        value = draw(st.one_of(non_string_json.filter(_not_dict), st.text(max_size=10)))
        return Fault("data_not_object", ("data",), value, _bad(R.INVALID_DATA))
    if family == "missing_field":
        required = [f for f in fields if (body["type"], f) not in OPTIONAL_FIELDS]
        field = draw(st.sampled_from(required))
        return Fault(f"missing_{field}", ("data", field), ABSENT, _bad(R.INVALID_DATA))
    if family == "field_value":
        # The kind first, rarest first: ids are in every type and would crowd out the rest.
        kind = draw(st.sampled_from([k for k in _KIND_ORDER if k in fields.values()]))
        field = draw(st.sampled_from([f for f, k in fields.items() if k == kind]))
        label, value, reason = draw(_broken_value(kind, data.get(field)))
        return Fault(f"{field}:{label}", ("data", field), value, _bad(reason))
    # time_value
    if session:
        value = draw(st.one_of(st.just(ABSENT), st.none(), invalid_times(session=True)))
        label = "time_missing" if value is ABSENT else "time_null" if value is None else "time"
        return Fault(f"session_{label}", ("time",), value, _bad(R.INVALID_TIME))
    return Fault(
        "directory_time", ("time",), draw(invalid_times(session=False)), _bad(R.INVALID_TIME)
    )


@st.composite
def faulty_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    """A good event with one or two faults in different places."""
    if draw(st.integers(0, 4)) == 0:  # IP faults need a login or an IP group: make them common
        built = draw(_with_addresses(topic))
        field = "ip" if topic == SESSION else "addresses"
        label, value, reason = draw(_broken_value(field, built.body["data"][field]))
        chosen = [Fault(f"{field}:{label}", ("data", field), value, _bad(reason))]
    else:
        built = draw(good_built(topic))
        chosen = [draw(faults(built))]
    if draw(st.integers(0, 3)) == 0:
        second = draw(faults(built))
        if not _overlaps(second.path, chosen[0].path):
            chosen.append(second)
    body = copy.deepcopy(built.body)
    for fault in chosen:
        _apply(body, fault)
    reasons = frozenset().union(*(f.reasons for f in chosen))
    value = draw(styles).dumps(body)
    label = "+".join(f.label for f in chosen)
    key = draw(st.sampled_from([built.key, "k0", "k1", "k2", "k3"]))
    return _sized(topic, key, value, Bad(reasons), f"bad:{topic}:{label}", max_bytes)

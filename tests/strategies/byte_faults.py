"""Faults only the bytes can carry: bad UTF-8, truncation, deep nesting, not JSON...

A fault whose reason depends on where a parser notices it (deep nesting inside a known
attribute: a wrong type, or too deep to read) accepts each reason it could give.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from hypothesis import strategies as st

from e911d.daemon.core.events import InvalidReason
from tests.strategies.body_faults import _not_dict
from tests.strategies.encoding import _sized, styles
from tests.strategies.good_events import (
    _ENVELOPE_KNOWN,
    ADDRESS_FIELDS,
    DIRECTORY_FIELDS,
    SESSION_FIELDS,
    Built,
    good_built,
)
from tests.strategies.tags import MAX_EVENT_BYTES, SESSION, Bad, R, Tagged, _bad
from tests.strategies.text import json_values

_MARK: Final = "\ue000\ue001mark\ue001\ue000"
_MARK_JSON: Final = json.dumps(_MARK, ensure_ascii=False).encode("utf-8")
INVALID_UTF8: Final = (
    b"\xff",
    b"\xfe\xff",
    b"\x80",
    b"\xc3",  # truncated two-byte sequence
    b"\xe2\x82",  # truncated three-byte sequence
    b"\xc0\x80",  # overlong NUL
    b"\xe0\x80\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xf8\x88\x80\x80\x80",  # five-byte form
)
# Bytes that cannot start a JSON text (whitespace excluded: it may precede one).
NON_JSON_START: Final = b"\x00\x01\x08\x1b\x7f\x80\xfe\xff}]:,'<>#/\\xXINaAu=;*"
NON_JSON: Final = (
    b"",
    b" ",
    b"\n\t ",
    b"not json",
    b"{",
    b"}",
    b"{not json",
    b"{'single': 'quotes'}",
    b'{"a": }',
    b'{"a" 1}',
    b'{"a": 1,}',
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"undefined",
    b"<event/>",
    b'{"specversion": "1.0"',
    b'{"a": 01}',
    b'{"a": .5}',
    b'{"a": "unterminated}',
    b'{"a": "\\x41"}',
    b'{"a": "\\u12"}',
)


def _known_string_paths(body: dict[str, Any], fields: dict[str, str]) -> list[tuple[Any, ...]]:
    """Paths to the string values of known data fields."""
    data = body["data"]
    paths: list[tuple[Any, ...]] = []
    for field, kind in fields.items():
        value = data.get(field)
        if isinstance(value, str):
            paths.append(("data", field))
        elif kind == "address":
            paths.extend(("data", field, f) for f in ADDRESS_FIELDS if f in value)
        elif kind == "addresses":
            paths.extend(("data", field, i) for i in range(len(value)))
    return paths


def _put(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def _marked(draw: st.DrawFn, built: Built, wrap: bool) -> tuple[dict[str, Any], str]:
    """The body with a marker in one place; where it is (envelope, known, ignored).

    ``wrap``: the marker is inside a longer string, not a whole value.
    """
    body = copy.deepcopy(built.body)
    fields = (SESSION_FIELDS if built.topic == SESSION else DIRECTORY_FIELDS)[body["type"]]
    mark = ("a" + _MARK + "b") if wrap else _MARK
    where = draw(st.sampled_from(["envelope", "known", "ignored_attribute", "ignored_field"]))
    if where == "envelope":
        strings = sorted(a for a in _ENVELOPE_KNOWN - {"data"} if isinstance(body.get(a), str))
        attr = draw(st.sampled_from(strings))
        body[attr] = body[attr][:3] + mark if wrap else mark
    elif where == "known":
        known = _known_string_paths(body, fields)
        if not known:
            return draw(_marked(built, wrap))
        _put(body, draw(st.sampled_from(known)), mark)
    elif where == "ignored_attribute":
        name = draw(st.sampled_from(["ext", "x" + _MARK, "nested"]))
        body[name] = {"deeper": [mark]} if name == "nested" else mark
    else:
        body["data"]["x_" + draw(st.sampled_from(["a", _MARK]))] = mark
    return body, where


@st.composite
def byte_faulty_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    """Faults only the bytes can carry: bad UTF-8, truncation, nesting, not JSON..."""
    family = draw(
        st.sampled_from(
            [
                "none",
                "non_json",
                "non_json_bytes",
                "not_an_object",
                "not_a_cloudevent",
                "truncated",
                "trailing_garbage",
                "utf16",
                "invalid_utf8",
                "lone_surrogate",
                "deep_nesting",
                "deep_top_level",
            ]
        )
    )
    key = draw(st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5", "\u00e9", "k" * 200]))
    category = f"bad:{topic}:{family}"

    def tagged(value: bytes | None, *reasons: InvalidReason, label: str = "") -> Tagged:
        cat = category + (f":{label}" if label else "")
        if value is None:
            return Tagged(topic, key, None, Bad(_bad(*reasons)), cat)
        return _sized(topic, key, value, Bad(_bad(*reasons)), cat, max_bytes)

    if family == "none":
        return tagged(None, R.NOT_CLOUDEVENT)
    if family == "non_json":
        return tagged(draw(st.sampled_from(NON_JSON)), R.INVALID_JSON)
    if family == "non_json_bytes":
        first = bytes([draw(st.sampled_from(NON_JSON_START))])
        return tagged(first + draw(st.binary(max_size=200)), R.INVALID_JSON)
    if family == "not_an_object":
        value = draw(json_values.filter(_not_dict))
        return tagged(json.dumps(value).encode(), R.NOT_CLOUDEVENT)
    if family == "not_a_cloudevent":
        value = draw(
            st.dictionaries(st.text(max_size=12), json_values, max_size=6).filter(
                lambda d: not {"specversion", "id", "source", "type", "data"} <= d.keys()
            )
        )
        return tagged(json.dumps(value).encode(), R.NOT_CLOUDEVENT)
    if family == "deep_top_level":
        depth = draw(st.integers(6_000, 12_000))
        shape = draw(st.sampled_from(["list", "unclosed_list", "object"]))
        if shape == "list":
            value = b"[" * depth + b"]" * depth
        elif shape == "unclosed_list":
            value = b"[" * depth
        else:
            value = b'{"a":' * depth + b"1" + b"}" * depth
        return tagged(value, R.NOT_CLOUDEVENT, R.INVALID_JSON, label=shape)
    built = draw(good_built(topic))
    style = draw(styles)
    if family == "truncated":
        whole = style.dumps(built.body)
        end = len(whole.rstrip())
        return tagged(whole[: draw(st.integers(0, end - 1))], R.INVALID_JSON)
    if family == "trailing_garbage":
        tail = draw(st.sampled_from([b"x", b"}", b",", b"{}", b"\x00", b"\xff", b"[]", b"1"]))
        return tagged(style.dumps(built.body) + tail, R.INVALID_JSON)
    if family == "utf16":
        text = json.dumps(built.body)
        codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
        return tagged(text.encode(codec), R.INVALID_JSON)
    if family in ("invalid_utf8", "lone_surrogate"):
        body, where = draw(_marked(built, wrap=draw(st.booleans())))
        if family == "invalid_utf8":
            replacement = draw(st.sampled_from(INVALID_UTF8))
        else:
            replacement = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud83d", b"x\\udc00"]))
        encoded = json.dumps(body, ensure_ascii=False).encode("utf-8")
        value = encoded.replace(_MARK.encode("utf-8"), replacement)
        if where == "known":  # refused while decoding the data, or the whole message
            return tagged(value, R.INVALID_JSON, R.INVALID_DATA, label=where)
        return tagged(value, R.INVALID_JSON, label=where)
    # deep_nesting: in an ignored place, in data, or in a known attribute
    body, where = draw(_marked(built, wrap=False))
    depth = draw(st.integers(6_000, 12_000))
    shape = draw(st.sampled_from(["list", "object", "unclosed"]))
    if shape == "list":
        deep = b"[" * depth + b"]" * depth
    elif shape == "object":
        depth = depth * 3 // 4
        deep = b'{"":' * depth + b"0" + b"}" * depth
    else:
        deep = b"[" * depth
    value = json.dumps(body, ensure_ascii=False).encode("utf-8").replace(_MARK_JSON, deep)
    if where == "envelope":  # a known attribute of the wrong type, or too deep to read
        return tagged(value, R.NOT_CLOUDEVENT, R.INVALID_JSON, label=f"{where}:{shape}")
    if where == "known":
        return tagged(value, R.INVALID_JSON, R.INVALID_DATA, label=f"{where}:{shape}")
    return tagged(value, R.INVALID_JSON, label=f"{where}:{shape}")

"""Events in the CloudEvents Kafka binary content mode: attributes in ``ce_*`` headers,
the data as the value; good ones, and ones with one fault each.

Good ones carry any JSON media type (or none), string extension headers, unrelated
headers (even non-UTF-8 ones: not part of the event), headers in any order. The faults
are those only this mode can have (a header missing, twice, without a value, not
UTF-8, a non-JSON content type) and the familiar ones in their binary spelling. In
this mode the envelope is the headers, so they count towards the size limit.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from hypothesis import strategies as st

from tests.strategies.body_faults import _not_dict
from tests.strategies.byte_faults import INVALID_UTF8, NON_JSON
from tests.strategies.encoding import styles
from tests.strategies.good_events import (
    _ENVELOPE_KNOWN,
    DIRECTORY_FIELDS,
    OPTIONAL_FIELDS,
    SESSION_FIELDS,
    good_built,
)
from tests.strategies.tags import MAX_EVENT_BYTES, SESSION, Bad, Good, Headers, R, Tagged, _bad
from tests.strategies.text import _ANY_CHARS, non_string_json
from tests.strategies.times import invalid_times

JSON_MEDIA_TYPES: Final = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "APPLICATION/JSON;CHARSET=UTF-8",
    "application/vnd.acme.session+json",
    "text/x-event+JSON ; v=1",
)
NON_JSON_MEDIA_TYPES: Final = (
    "text/plain",
    "application/xml",
    "application/avro",
    "application/x-protobuf",
    "application/json-seq",
    "json",
    "*/*",
    "",
    "application/+json",
)
CE_JSON: Final = b"application/cloudevents+json"
_ATTRIBUTES: Final = ("specversion", "id", "source", "type", "time")
_UNRELATED: Final = (
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("x-raw", b"\xff\x00\xfe"),  # not an attribute: its bytes do not matter
    ("CE_ID", b"shouting"),  # header names are case-sensitive: not ce_id
)


def header_bytes(headers: Headers) -> int:
    """What the decoder counts towards the limit: the ce_* and content-type headers."""
    return sum(
        len(k) + len(v or b"")
        for k, v in headers
        if k.startswith("ce_") or k.lower() == "content-type"
    )


@st.composite
def _binary_parts(draw: st.DrawFn, topic: str) -> tuple[Any, bytes, Headers, Any]:
    """A good event in binary mode: (built, value, headers, data)."""
    built = draw(good_built(topic))
    body = built.body
    headers: list[tuple[str, bytes | None]] = [
        (f"ce_{a}", str(body[a]).encode()) for a in _ATTRIBUTES if body.get(a) is not None
    ]
    content_type = draw(st.sampled_from(JSON_MEDIA_TYPES))
    if content_type is not None:
        name = draw(st.sampled_from(["content-type", "Content-Type"]))
        headers.append((name, content_type.encode()))
    names = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
    extensions = draw(st.dictionaries(names, st.text(_ANY_CHARS, max_size=20), max_size=2))
    headers += [(f"ce_{k}", v.encode()) for k, v in extensions.items() if k not in _ENVELOPE_KNOWN]
    headers += draw(st.lists(st.sampled_from(_UNRELATED), max_size=2, unique=True))
    headers = draw(st.permutations(headers))
    value = draw(styles).dumps(body["data"])
    return built, value, tuple(headers), body["data"]


def _sized(
    topic: str,
    key: str,
    value: bytes | None,
    headers: Headers,
    expect: Good | Bad,
    category: str,
    max_bytes: int,
) -> Tagged:
    if len(value or b"") + header_bytes(headers) > max_bytes:
        return Tagged(topic, key, value, Bad(_bad(R.OVERSIZED)), category + "+oversized", headers)
    return Tagged(topic, key, value, expect, category, headers)


@st.composite
def good_binary_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    built, value, headers, _ = draw(_binary_parts(topic))
    return _sized(
        topic, built.key, value, headers, Good(built.event), f"good:{topic}:binary", max_bytes
    )


def _without(headers: Headers, name: str) -> Headers:
    return tuple(h for h in headers if h[0] != name)


def _replaced(headers: Headers, name: str, value: bytes | None) -> Headers:
    return (*_without(headers, name), (name, value))


BINARY_FAULTS: Final = (
    "missing_attribute",
    "duplicate_header",
    "header_invalid_utf8",
    "header_without_value",
    "bad_specversion",
    "attribute_bounds",
    "non_json_content_type",
    "structured_content_type",
    "bad_time",
    "unknown_type",
    "value_none",
    "value_non_json",
    "value_invalid_utf8",
    "value_not_object",
    "missing_field",
    "oversized_header",
)


@st.composite
def faulty_binary_messages(
    draw: st.DrawFn,
    topic: str,
    max_bytes: int = MAX_EVENT_BYTES,
    families: tuple[str, ...] = BINARY_FAULTS,
) -> Tagged:
    """One fault each; the reason it must be dead-lettered with follows from the fault."""
    built, value, headers, data = draw(_binary_parts(topic))
    nce = _bad(R.NOT_CLOUDEVENT)
    attr = draw(st.sampled_from(["ce_id", "ce_source", "ce_type"]))
    family = draw(st.sampled_from(families))
    structured = False  # without ce_specversion, or marked structured: the value is it all
    expect = nce
    if family == "missing_attribute":
        attr = draw(st.sampled_from([attr, "ce_specversion", "ce_time"]))
        headers = _without(headers, attr)
        if attr == "ce_specversion":  # not binary mode then: the data is taken as the event
            structured = True
            value = json.dumps({k: v for k, v in data.items() if k not in _ENVELOPE_KNOWN})
            value = value.encode()
        elif attr == "ce_time":  # required on session events only
            expect = _bad(R.INVALID_TIME) if topic == SESSION else frozenset()
        family = f"missing_{attr}"
    elif family == "duplicate_header":
        name, raw = draw(st.sampled_from([h for h in headers if h[0].startswith("ce_")]))
        again = draw(st.sampled_from([raw, b"other"]))
        headers = tuple(draw(st.permutations([*headers, (name, again)])))
    elif family == "header_invalid_utf8":
        name = draw(st.sampled_from([attr, "ce_specversion", "ce_ext", "content-type"]))
        headers = _replaced(headers, name, b"ok" + draw(st.sampled_from(INVALID_UTF8)))
    elif family == "header_without_value":
        headers = _replaced(headers, draw(st.sampled_from([attr, "ce_ext"])), None)
    elif family == "bad_specversion":
        spec = draw(st.sampled_from(["0.3", "1", "1.0.0", " 1.0", "", "2.0"]))
        headers = _replaced(headers, "ce_specversion", spec.encode())
    elif family == "attribute_bounds":
        name, limit = draw(st.sampled_from([("ce_id", 512), ("ce_source", 2048), ("ce_type", 256)]))
        text = draw(st.sampled_from(["", "x" * (limit + 1)]))
        headers = _replaced(headers, name, text.encode())
        family = f"{name}_{'empty' if not text else 'too_long'}"
    elif family == "non_json_content_type":
        media = draw(st.sampled_from(NON_JSON_MEDIA_TYPES))
        headers = _replaced(_without(headers, "Content-Type"), "content-type", media.encode())
    elif family == "structured_content_type":
        media = draw(st.sampled_from([CE_JSON, b"Application/CloudEvents+JSON; charset=utf-8"]))
        headers = _replaced(_without(headers, "Content-Type"), "content-type", media)
        data = {k: v for k, v in data.items() if k not in _ENVELOPE_KNOWN}
        value = json.dumps(data).encode()
        structured = True
    elif family == "bad_time":
        headers = _replaced(headers, "ce_time", draw(invalid_times(topic == SESSION)).encode())
        expect = _bad(R.INVALID_TIME)
    elif family == "unknown_type":
        other = draw(st.sampled_from(["e911.session.login", "e911.account.deleted", "x", "E911"]))
        fields = SESSION_FIELDS if topic == SESSION else DIRECTORY_FIELDS
        if other in fields:
            other = other.upper()
        headers = _replaced(headers, "ce_type", other.encode())
        expect = _bad(R.UNKNOWN_TYPE)
    elif family == "value_none":
        value = None
        expect = _bad(R.INVALID_DATA)
    elif family == "value_non_json":
        value = draw(st.sampled_from([v for v in NON_JSON if v.strip()]))
        expect = _bad(R.INVALID_JSON)
    elif family == "value_invalid_utf8":
        value = value[:1] + draw(st.sampled_from(INVALID_UTF8)) + value[1:]
        expect = _bad(R.INVALID_JSON)
    elif family == "value_not_object":
        value = json.dumps(draw(non_string_json.filter(_not_dict))).encode()
        expect = _bad(R.INVALID_DATA)
    elif family == "missing_field":
        type_ = built.body["type"]
        fields = (SESSION_FIELDS if topic == SESSION else DIRECTORY_FIELDS)[type_]
        field = draw(st.sampled_from([f for f in fields if (type_, f) not in OPTIONAL_FIELDS]))
        value = json.dumps({k: v for k, v in data.items() if k != field}).encode()
        expect = _bad(R.INVALID_DATA)
        family = f"missing_{field}"
    else:  # oversized_header: an extension as big as the limit allows the value to be
        size = max_bytes - len(value) + draw(st.integers(1, 100))
        headers = (*headers, ("ce_padding", b"p" * size))
        expect = _bad(R.OVERSIZED)
    category = f"bad:{topic}:binary+{family}"
    if not expect:  # no fault after all (an optional attribute left out)
        event = dataclasses.replace(built.event, time=None)
        return _sized(topic, built.key, value, headers, Good(event), category, max_bytes)
    if structured:
        # The value alone is the message now: the size limit applies to it only.
        if len(value or b"") > max_bytes:
            return Tagged(topic, built.key, value, Bad(_bad(R.OVERSIZED)), category, headers)
        return Tagged(topic, built.key, value, Bad(expect), category, headers)
    return _sized(topic, built.key, value, headers, Bad(expect), category, max_bytes)


def binary_messages(topic: str, max_bytes: int = MAX_EVENT_BYTES) -> st.SearchStrategy[Tagged]:
    return st.one_of(
        good_binary_messages(topic, max_bytes), faulty_binary_messages(topic, max_bytes)
    )

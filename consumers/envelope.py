"""The CloudEvents 1.0 envelope, both ways: structured JSON mode, and binary mode on read.

Every event e911d writes travels in the structured-mode envelope. Decoding and
encoding live side by side so that what the daemon publishes is what it would accept
itself, and the attribute names, the spec version and the time format are spelled
once. Inbound events may also come in the Kafka binary content mode (attributes in
``ce_*`` headers, the value is the data), which many producers default to; both modes
decode to the same :class:`Envelope`, so nothing downstream knows which one it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final

import msgspec

from e911d.daemon.core.events import Invalid, InvalidReason, exc_detail

SPEC_VERSION: Final = "1.0"
# The Kafka content-type header of a structured-mode event: the value is the envelope.
CONTENT_TYPE: Final = "application/cloudevents+json"
DATA_CONTENT_TYPE: Final = "application/json"
# Binary content mode (CloudEvents Kafka binding §3.2): attribute ``x`` is header ``ce_x``.
CE_HEADER_PREFIX: Final = "ce_"
CONTENT_TYPE_HEADER: Final = "content-type"
# Kafka record headers as aiokafka hands them over; a header may have no value.
Headers = Sequence[tuple[str, bytes | None]]

# RFC 3339 date-time (the zone is checked apart, to say so): Python's fromisoformat
# alone also takes ISO 8601 forms (basic format, week dates, "09:00:00 Z") that other
# CloudEvents readers refuse, so e911d refuses them too.
_RFC3339 = re.compile(
    r"\A\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?\Z",
    re.ASCII,
)
_MIN_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MAX_TIME = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


class Envelope(msgspec.Struct, forbid_unknown_fields=False):
    """The attributes e911d reads; ``data`` stays raw until its type picks a schema."""

    specversion: str
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    data: msgspec.Raw
    time: str | None = None
    datacontenttype: str | None = None


# The attributes a binary-mode event can set; other ce_* headers are extensions (ignored).
_BINARY_ATTRIBUTES: Final = frozenset(
    {"specversion", "id", "source", "type", "time", "datacontenttype"}
)
_envelope_decoder = msgspec.json.Decoder(Envelope)


def is_json_media_type(value: str) -> bool:
    """``application/json`` or any ``type/subtype+json``, parameters and case aside."""
    media = value.split(";", 1)[0].strip().lower()
    type_, slash, subtype = media.partition("/")
    if not (slash and type_ and subtype) or "/" in subtype:
        return False
    return media == DATA_CONTENT_TYPE or (subtype.endswith("+json") and subtype != "+json")


def _header_name(key: str) -> str | None:
    """The attribute a header carries in binary mode, or None for any other header."""
    if key.startswith(CE_HEADER_PREFIX):
        return key[len(CE_HEADER_PREFIX) :]
    if key.lower() == CONTENT_TYPE_HEADER:
        return "datacontenttype"
    return None


def is_binary_mode(headers: Headers) -> bool:
    """A ``ce_specversion`` header, and no structured-mode content type, mean binary mode."""
    binary = False
    for key, raw in headers:
        if key == CE_HEADER_PREFIX + "specversion":
            binary = True
        elif key.lower() == CONTENT_TYPE_HEADER and raw is not None:
            media = raw.split(b";", 1)[0].strip().lower()
            if media == CONTENT_TYPE.encode():
                return False
    return binary


def decode_envelope(
    value: bytes | None, max_bytes: int, headers: Headers = ()
) -> Envelope | Invalid:
    """Never raises: a message that is not a CloudEvent becomes the reason it is not."""
    if is_binary_mode(headers):
        return _decode_binary(value, max_bytes, headers)
    if value is None:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, "message has no value")
    if len(value) > max_bytes:
        return Invalid(InvalidReason.OVERSIZED, f"{len(value)} bytes > limit {max_bytes}")
    try:
        # msgspec decodes strings lazily (raw data is decoded later, unknown fields
        # never), so bad UTF-8 would slip through or blow up downstream: check it all.
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Invalid(InvalidReason.INVALID_JSON, f"not UTF-8: {exc_detail(exc)}")
    try:
        env = _envelope_decoder.decode(value)
    except msgspec.ValidationError as exc:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, exc_detail(exc))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return Invalid(InvalidReason.INVALID_JSON, exc_detail(exc))
    return _checked(env)


def _checked(env: Envelope) -> Envelope | Invalid:
    if env.specversion != SPEC_VERSION:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, f"specversion {env.specversion[:20]!r}")
    if env.datacontenttype is not None and not is_json_media_type(env.datacontenttype):
        return Invalid(
            InvalidReason.NOT_CLOUDEVENT,
            f"datacontenttype {env.datacontenttype[:100]!r} is not a JSON media type",
        )
    return env


def _binary_attributes(
    value: bytes | None, max_bytes: int, headers: Headers
) -> dict[str, str] | Invalid:
    """The attributes the headers carry; each must be there once, as UTF-8 text.

    The headers are the envelope in this mode, so they count towards the size limit
    with the value.
    """
    carried = [(key, raw, name) for key, raw in headers if (name := _header_name(key)) is not None]
    size = (0 if value is None else len(value)) + sum(
        len(key) + (0 if raw is None else len(raw)) for key, raw, _ in carried
    )
    if size > max_bytes:
        return Invalid(
            InvalidReason.OVERSIZED, f"{size} bytes of value and ce_ headers > limit {max_bytes}"
        )
    attributes: dict[str, str] = {}
    for key, raw, name in carried:
        if raw is None:
            return Invalid(InvalidReason.NOT_CLOUDEVENT, f"header {key[:100]!r} has no value")
        if name in attributes:
            return Invalid(InvalidReason.NOT_CLOUDEVENT, f"header {key[:100]!r} appears twice")
        try:
            attributes[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Invalid(
                InvalidReason.NOT_CLOUDEVENT,
                f"header {key[:100]!r} is not UTF-8: {exc_detail(exc)}",
            )
    return attributes


def _decode_binary(value: bytes | None, max_bytes: int, headers: Headers) -> Envelope | Invalid:
    """The envelope of a binary-mode event: attributes from ``ce_*`` headers, data = value."""
    attributes = _binary_attributes(value, max_bytes, headers)
    if isinstance(attributes, Invalid):
        return attributes
    if value is None:
        return Invalid(InvalidReason.INVALID_DATA, "binary-mode event without a value (its data)")
    known = {k: v for k, v in attributes.items() if k in _BINARY_ATTRIBUTES}
    try:
        env = msgspec.convert({**known, "data": msgspec.Raw(value)}, Envelope)
    except msgspec.ValidationError as exc:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, exc_detail(exc))
    checked = _checked(env)
    if isinstance(checked, Invalid):
        return checked
    try:
        value.decode("utf-8")
        msgspec.json.decode(value, type=msgspec.Raw)  # one whole JSON text, nothing after it
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return Invalid(InvalidReason.INVALID_JSON, exc_detail(exc))
    return checked


def parse_time(text: str | None, *, required: bool) -> dt.datetime | None:
    """The ``time`` attribute as an aware UTC datetime; raises ValueError with the reason.

    The range check keeps a typo'd year from anchoring schedules decades away.
    """
    if text is None:
        if required:
            raise ValueError("time is required")
        return None
    if len(text) > 64:
        raise ValueError("time is too long")
    if not _RFC3339.match(text):
        raise ValueError(f"time {text!r} is not RFC 3339")
    try:
        value = dt.datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(f"time {text!r} is not RFC 3339") from None
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"time {text!r} is out of range") from None
    if not _MIN_TIME <= value < _MAX_TIME:
        raise ValueError(f"time {text!r} is out of range")
    return value


def format_time(t: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``: one spelling, whatever zone the caller's clock had."""
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def encode_event(
    *,
    type_: str,
    event_id: str,
    source: str,
    time: dt.datetime,
    data: Any,
    subject: str | None = None,
) -> bytes:
    """A structured-mode event; ``data`` is anything msgspec encodes as JSON."""
    attributes: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": type_,
    }
    if subject is not None:
        attributes["subject"] = subject
    attributes["time"] = format_time(time)
    attributes["datacontenttype"] = DATA_CONTENT_TYPE
    attributes["data"] = data
    return msgspec.json.encode(attributes)

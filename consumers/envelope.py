"""The CloudEvents 1.0 structured-mode JSON envelope, both ways.

Every event e911d reads or writes travels in this envelope. Decoding and encoding
live side by side so that what the daemon publishes is what it would accept itself,
and the attribute names, the spec version and the time format are spelled once.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

import msgspec

from e911d.consumers.events import Invalid, InvalidReason, exc_detail

SPEC_VERSION: Final = "1.0"
# The Kafka content-type header of a structured-mode event: the value is the envelope.
CONTENT_TYPE: Final = "application/cloudevents+json"
DATA_CONTENT_TYPE: Final = "application/json"

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


_envelope_decoder = msgspec.json.Decoder(Envelope)


def decode_envelope(value: bytes | None, max_bytes: int) -> Envelope | Invalid:
    """Never raises: a message that is not a CloudEvent becomes the reason it is not."""
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
    if env.specversion != SPEC_VERSION:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, f"specversion {env.specversion[:20]!r}")
    if env.datacontenttype is not None and not env.datacontenttype.startswith(DATA_CONTENT_TYPE):
        return Invalid(InvalidReason.NOT_CLOUDEVENT, "datacontenttype is not application/json")
    return env


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
    try:
        value = dt.datetime.fromisoformat(text)
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

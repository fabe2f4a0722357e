"""The CloudEvents envelope: what e911d writes is what it reads back."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest

from e911d.consumers.envelope import (
    DATA_CONTENT_TYPE,
    SPEC_VERSION,
    Envelope,
    Headers,
    decode_envelope,
    encode_event,
    format_time,
    is_binary_mode,
    is_json_media_type,
    parse_time,
)
from e911d.daemon.core.events import Invalid, InvalidReason

WHEN = dt.datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
DATA = {"alert_id": "al-1", "nested": {"list": [1, "two", None]}, "flag": True}


def _event(**extra: str) -> bytes:
    return encode_event(
        type_="e911.alert.raised",
        event_id="al-1",
        source="urn:e911d",
        time=WHEN,
        data=DATA,
        **extra,
    )


def test_round_trip_keeps_attributes_and_data() -> None:
    env = decode_envelope(_event(), 65_536)
    assert isinstance(env, Envelope), env
    assert env.specversion == SPEC_VERSION == "1.0"
    assert (env.id, env.source, env.type) == ("al-1", "urn:e911d", "e911.alert.raised")
    assert env.datacontenttype == DATA_CONTENT_TYPE == "application/json"
    assert env.time == "2026-11-26T09:00:00.123456Z"
    assert parse_time(env.time, required=True) == WHEN
    assert msgspec.json.decode(env.data) == DATA


def test_subject_appears_only_when_given() -> None:
    assert "subject" not in json.loads(_event())
    with_subject = _event(subject="alice")
    assert json.loads(with_subject)["subject"] == "alice"
    # The reader ignores the attribute it does not use; everything else is unchanged.
    assert decode_envelope(with_subject, 65_536) == decode_envelope(_event(), 65_536)


def test_attribute_order_is_the_published_one() -> None:
    assert list(json.loads(_event(subject="s"))) == [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ]


def test_format_time_is_utc_with_z() -> None:
    assert format_time(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2026-01-02T03:04:05Z"
    assert format_time(WHEN) == "2026-11-26T09:00:00.123456Z"


# ---- binary content mode -------------------------------------------------------------------

BINARY = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"ev-1"),
    ("ce_source", b"urn:knative"),
    ("ce_type", b"e911.session.login"),
    ("ce_time", b"2026-11-26T09:00:00Z"),
    ("ce_knativearrivaltime", b"2026-11-26T09:00:01Z"),
    ("content-type", b"application/json"),
]
DATA_BYTES = b'{"account_id": "a", "user_id": "u", "session_id": "s", "ip": "192.0.2.1"}'


def _binary(headers: Headers, value: bytes | None = DATA_BYTES) -> object:
    return decode_envelope(value, 65_536, headers)


def test_binary_mode_builds_the_envelope_from_headers_and_value() -> None:
    env = _binary(BINARY)
    assert isinstance(env, Envelope), env
    assert (env.specversion, env.id, env.source, env.type) == (
        "1.0",
        "ev-1",
        "urn:knative",
        "e911.session.login",
    )
    assert env.time == "2026-11-26T09:00:00Z"
    assert env.datacontenttype == "application/json"
    assert bytes(env.data) == DATA_BYTES


@pytest.mark.parametrize(
    "media",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.acme+json",
        "text/foo+JSON;x=1",
    ],
)
def test_any_json_media_type_or_none_is_json(media: str | None) -> None:
    headers = [h for h in BINARY if h[0] != "content-type"]
    if media is not None:
        headers.append(("content-type", media.encode()))
    assert isinstance(_binary(headers), Envelope)
    assert is_json_media_type(media) if media is not None else True


@pytest.mark.parametrize(
    "media", ["text/plain", "application/avro", "application/json-seq", "json", "*/*", ""]
)
def test_a_non_json_content_type_is_not_read(media: str) -> None:
    headers = [*(h for h in BINARY if h[0] != "content-type"), ("content-type", media.encode())]
    result = _binary(headers)
    assert isinstance(result, Invalid)
    assert result.reason is InvalidReason.NOT_CLOUDEVENT
    assert "JSON media type" in result.detail


@pytest.mark.parametrize(
    ("headers", "value", "reason", "detail"),
    [
        ([*BINARY, ("ce_id", b"ev-2")], DATA_BYTES, "not_cloudevent", "twice"),
        ([*BINARY, ("Content-Type", b"application/json")], DATA_BYTES, "not_cloudevent", "twice"),
        ([*BINARY[:1], ("ce_id", b"\xff"), *BINARY[2:]], DATA_BYTES, "not_cloudevent", "UTF-8"),
        ([*BINARY, ("ce_ext", b"\xc0\x80")], DATA_BYTES, "not_cloudevent", "UTF-8"),
        ([*BINARY, ("ce_ext", None)], DATA_BYTES, "not_cloudevent", "no value"),
        ([h for h in BINARY if h[0] != "ce_type"], DATA_BYTES, "not_cloudevent", "type"),
        ([("ce_specversion", b"0.3"), *BINARY[1:]], DATA_BYTES, "not_cloudevent", "0.3"),
        ([*BINARY, ("ce_big", b"x" * 65_536)], DATA_BYTES, "oversized", "ce_ headers"),
        (BINARY, None, "invalid_data", "without a value"),
        (BINARY, b'{"account_id": ', "invalid_json", "truncated"),
        (BINARY, b'{"a": 1} {"b": 2}', "invalid_json", "trailing"),
        (BINARY, b'{"a": "\xff"}', "invalid_json", "utf-8"),
    ],
)
def test_bad_binary_mode_events_say_why(
    headers: list[tuple[str, bytes | None]], value: bytes | None, reason: str, detail: str
) -> None:
    result = _binary(headers, value)
    assert isinstance(result, Invalid), result
    assert (result.reason, detail.lower() in result.detail.lower()) == (reason, True), result


def test_unrelated_headers_do_not_matter_and_structured_mode_wins_when_declared() -> None:
    noisy = [("traceparent", b"\xff\xfe"), ("CE_ID", b"x"), *BINARY]
    assert isinstance(_binary(noisy), Envelope)
    structured = _event()
    declared = [*BINARY[:1], ("content-type", b"Application/CloudEvents+JSON; charset=utf-8")]
    assert decode_envelope(structured, 65_536, declared) == decode_envelope(structured, 65_536)
    assert not is_binary_mode([("content-type", b"application/json")])  # no ce_specversion


@pytest.mark.parametrize(
    "text", ["2026-11-26T09:00:00 Z", "20261126T090000Z", "2026-W48-4T09:00:00Z", "2026-11-26T09Z"]
)
def test_iso_8601_forms_that_are_not_rfc_3339_are_refused(text: str) -> None:
    """Python's fromisoformat takes these; other CloudEvents readers do not. The first one
    is what the hostile-input generators found accepted though built as invalid."""
    with pytest.raises(ValueError, match="not RFC 3339"):
        parse_time(text, required=True)


def test_rfc_3339_spellings_are_accepted() -> None:
    for text in ("2026-11-26T09:00:00Z", "2026-11-26t09:00:00.25+01:00", "2026-11-26 09:00:00z"):
        assert parse_time(text, required=True) is not None, text


# ---- media types, case-insensitive (docs/spec.md#event-contracts: any application/json or
# */*+json) --------

JSON_MEDIA_TYPES = [
    "application/json",
    "Application/JSON",
    "APPLICATION/JSON",
    "application/json; charset=utf-8",
    "Application/Json;Charset=UTF-8",
    "application/json ;charset=utf-8",
    " application/json ",
    "application/vnd.acme.session+json",
    "Application/VND.Acme+JSON; version=2",
    "text/foo+Json",
]
NOT_JSON_MEDIA_TYPES = [
    "text/plain",
    "application/xml",
    "Application/JSON-seq",
    "application/jsonx",
    "application/+json",
    "application",
    "json",
    "/json",
    "application/json/x",
    "",
]


def _structured(datacontenttype: str | None) -> bytes:
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "urn:producer",
        "type": "e911.session.login",
        "data": json.loads(DATA_BYTES),
    }
    if datacontenttype is not None:
        event["datacontenttype"] = datacontenttype
    return json.dumps(event).encode()


@pytest.mark.parametrize("media", [*JSON_MEDIA_TYPES, None])
def test_structured_mode_reads_any_json_media_type_whatever_its_case(media: str | None) -> None:
    env = decode_envelope(_structured(media), 65_536)
    assert isinstance(env, Envelope), env
    assert env.datacontenttype == media  # kept as the producer spelled it
    assert msgspec.json.decode(env.data) == json.loads(DATA_BYTES)
    if media is not None:
        assert is_json_media_type(media)


@pytest.mark.parametrize("media", NOT_JSON_MEDIA_TYPES)
def test_structured_mode_refuses_a_media_type_that_is_not_json(media: str) -> None:
    result = decode_envelope(_structured(media), 65_536)
    assert isinstance(result, Invalid), result
    assert result.reason is InvalidReason.NOT_CLOUDEVENT
    assert "is not a JSON media type" in result.detail
    assert not is_json_media_type(media)


@pytest.mark.parametrize("media", JSON_MEDIA_TYPES)
def test_binary_mode_reads_any_json_content_type_whatever_its_case(media: str) -> None:
    headers = [*(h for h in BINARY if h[0] != "content-type"), ("Content-Type", media.encode())]
    env = _binary(headers)
    assert isinstance(env, Envelope), env
    assert env.datacontenttype == media
    assert bytes(env.data) == DATA_BYTES


@pytest.mark.parametrize("media", NOT_JSON_MEDIA_TYPES)
def test_binary_mode_refuses_a_content_type_that_is_not_json(media: str) -> None:
    headers = [*(h for h in BINARY if h[0] != "content-type"), ("content-type", media.encode())]
    result = _binary(headers)
    assert isinstance(result, Invalid), result
    assert result.reason is InvalidReason.NOT_CLOUDEVENT
    assert "is not a JSON media type" in result.detail


@pytest.mark.parametrize(
    "declared",
    [
        b"application/cloudevents+json",
        b"Application/CloudEvents+JSON",
        b"APPLICATION/CLOUDEVENTS+JSON;charset=UTF-8",
        b" application/cloudevents+json ; charset=utf-8",
    ],
)
def test_a_structured_content_type_in_any_case_wins_over_ce_headers(declared: bytes) -> None:
    # A producer that sets ce_* headers *and* declares the structured mode: the value
    # is the envelope, as the Kafka binding says.
    headers = [*BINARY[:-1], ("Content-Type", declared)]
    assert not is_binary_mode(headers)
    assert decode_envelope(_event(), 65_536, headers) == decode_envelope(_event(), 65_536)

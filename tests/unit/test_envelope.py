"""The CloudEvents envelope: what e911d writes is what it reads back."""

from __future__ import annotations

import datetime as dt
import json

import msgspec

from e911d.consumers.envelope import (
    DATA_CONTENT_TYPE,
    SPEC_VERSION,
    Envelope,
    decode_envelope,
    encode_event,
    format_time,
    parse_time,
)

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

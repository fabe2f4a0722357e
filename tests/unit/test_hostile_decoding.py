"""Hostile input through the real decoders (docs/spec.md#event-contracts, #dead-letters), as fast
property tests.

Decoding never raises; every generated message is decoded exactly as it was built to
be: good ones to the very event they describe, bad ones to an ``Invalid`` whose reason
is one of those their construction implies (see ``tests/strategies/``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from e911d.consumers.wire import decode_directory_event, decode_session_event
from e911d.daemon.core.events import (
    DirectoryEvent,
    DirectoryEventKind,
    Invalid,
    InvalidReason,
    SessionEvent,
    SessionEventKind,
)
from tests.strategies import (
    BINARY_FAULTS,
    DIRECTORY,
    MAX_CLOCK_SKEW,
    MAX_EVENT_BYTES,
    SESSION,
    Bad,
    Good,
    Tagged,
    all_messages,
    bad_messages,
    big_messages,
    binary_messages,
    faulty_binary_messages,
    good_binary_messages,
    good_messages,
    json_values,
    messages,
    missing_categories,
)
from tests.strategies.tags import Headers

FAST = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
MANY = settings(FAST, max_examples=800)


def decode(
    topic: str, value: bytes | None, max_bytes: int = MAX_EVENT_BYTES, headers: Headers = ()
) -> Any:
    if topic == SESSION:
        not_after = dt.datetime.now(dt.UTC) + MAX_CLOCK_SKEW
        return decode_session_event(value, max_bytes, not_after, headers)
    return decode_directory_event(value, max_bytes, headers)


def check(message: Tagged) -> None:
    """The decoder of the message's topic does what the message was built for."""
    shown = (
        message.category,
        message.value[:300] if message.value else message.value,
        [(k, v[:100] if v else v) for k, v in message.headers],
    )
    result = decode(message.topic, message.value, headers=message.headers)
    if isinstance(message.expect, Good):
        assert result == message.expect.event, shown
        return
    assert isinstance(result, Invalid), (shown, result)
    assert result.reason in message.expect.reasons, (shown, result)
    assert result.detail, shown  # the dead letter says why
    assert len(result.detail) <= 400, shown


def never_raises(
    value: bytes | None, max_bytes: int = MAX_EVENT_BYTES, headers: Headers = ()
) -> None:
    """Both decoders return an event or an Invalid with a known reason, never raise."""
    results = [
        (decode_session_event(value, max_bytes, None, headers), SessionEvent),
        (decode_directory_event(value, max_bytes, headers), DirectoryEvent),
    ]
    for result, event_type in results:
        assert isinstance(result, event_type | Invalid), result
        if isinstance(result, Invalid):
            assert result.reason in set(InvalidReason)
            assert result.detail


# ---- generated, tagged messages -------------------------------------------------------


@MANY
@given(messages(SESSION))
def test_session_messages_decode_as_built(message: Tagged) -> None:
    check(message)


@MANY
@given(messages(DIRECTORY))
def test_directory_messages_decode_as_built(message: Tagged) -> None:
    check(message)


@FAST
@given(st.sampled_from([SESSION, DIRECTORY]).flatmap(good_messages))
def test_good_messages_are_good_on_their_own_topic_only(message: Tagged) -> None:
    """A good event decodes; on the other topic it is an unknown type, not a crash."""
    check(message)
    assume(message.good)  # not made oversized by its hostile content
    other = DIRECTORY if message.topic == SESSION else SESSION
    result = decode(other, message.value)
    assert isinstance(result, Invalid)
    assert result.reason is InvalidReason.UNKNOWN_TYPE


@FAST
@given(st.sampled_from([SESSION, DIRECTORY]).flatmap(bad_messages))
def test_bad_messages_never_crash_the_other_decoder_either(message: Tagged) -> None:
    assert isinstance(message.expect, Bad)
    check(message)
    never_raises(message.value)


@settings(FAST, max_examples=150)
@given(st.sampled_from([SESSION, DIRECTORY]).flatmap(big_messages))
def test_messages_at_and_beyond_the_size_limit(message: Tagged) -> None:
    check(message)
    assert message.value is not None
    if isinstance(message.expect, Bad):
        assert len(message.value) > MAX_EVENT_BYTES
        assert message.expect.reasons == {InvalidReason.OVERSIZED}
    else:
        assert len(message.value) == MAX_EVENT_BYTES


# ---- binary content mode ----------------------------------------------------------------


@settings(FAST, max_examples=250)
@given(st.sampled_from([SESSION, DIRECTORY]).flatmap(binary_messages))
def test_binary_mode_messages_decode_as_built(message: Tagged) -> None:
    check(message)


@settings(FAST, max_examples=100)
@given(st.sampled_from([SESSION, DIRECTORY]).flatmap(good_binary_messages))
def test_a_binary_mode_event_decodes_as_its_structured_twin(message: Tagged) -> None:
    """Same attributes, same data: the same event, whichever mode carried it."""
    assume(message.good)
    assert isinstance(message.expect, Good)
    event = message.expect.event
    assert check(message) is None
    assert dict(message.headers).get("ce_id") == event.event_id.encode()


def test_the_binary_generators_cover_every_fault_and_reason() -> None:
    reasons: set[InvalidReason] = set()
    for family in BINARY_FAULTS:
        sample = _sample(
            st.one_of(
                faulty_binary_messages(SESSION, families=(family,)),
                faulty_binary_messages(DIRECTORY, families=(family,)),
            ),
            12,
        )
        assert sample, family
        for m in sample:
            check(m)
            reasons |= m.expect.reasons if isinstance(m.expect, Bad) else set()
    assert reasons == set(InvalidReason) - {InvalidReason.REJECTED, InvalidReason.INVALID_IP}


@settings(FAST, max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
                             "content-type", "ce_x", "other"]),
            st.one_of(st.none(), st.binary(max_size=30),
                      st.sampled_from([b"1.0", b"e911.session.login", b"e911.account.deleted"])),
        ),
        max_size=8,
    ),
    st.one_of(st.none(), st.binary(max_size=200)),
)  # fmt: skip
def test_arbitrary_headers_never_raise(headers: list[tuple[str, bytes | None]], value: Any) -> None:
    never_raises(value, MAX_EVENT_BYTES, tuple(headers))


# ---- arbitrary input: no expectation but "does not raise" -------------------------------


@MANY
@given(st.binary(max_size=2_000), st.integers(0, 3_000))
def test_arbitrary_bytes_never_raise(value: bytes, max_bytes: int) -> None:
    never_raises(value, max_bytes)


@MANY
@given(json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    never_raises(json.dumps(value).encode())
    never_raises(json.dumps(value, ensure_ascii=False).encode())


@MANY
@given(
    st.sampled_from([SESSION, DIRECTORY]).flatmap(good_messages),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=0, max_size=4)), max_size=4),
)
def test_good_messages_with_spliced_bytes_never_raise(
    message: Tagged, splices: list[tuple[int, bytes]]
) -> None:
    """Random bytes written over any part of a good message (a flipped bit in a string,
    a broken escape, a cut token): whatever it is now, decoding returns, never raises."""
    assert message.value is not None
    value = bytearray(message.value)
    for at, chunk in splices:
        at %= len(value) + 1
        value[at : at + len(chunk)] = chunk
    never_raises(bytes(value))


# ---- the generators themselves ----------------------------------------------------------


def _sample(strategy: st.SearchStrategy[Tagged], n: int) -> list[Tagged]:
    sample: list[Tagged] = []

    @settings(FAST, max_examples=n)
    @given(strategy)
    def collect(message: Tagged) -> None:
        sample.append(message)

    collect()
    return sample


def test_the_generators_cover_every_category_of_hostile_input() -> None:
    sample = _sample(all_messages(), 900)
    assert missing_categories(sample) == set()
    good = {m.topic for m in sample if m.good}
    bad = [m for m in sample if isinstance(m.expect, Bad)]
    assert good == {m.topic for m in bad} == {SESSION, DIRECTORY}
    reasons = set().union(*(m.expect.reasons for m in bad if isinstance(m.expect, Bad)))
    assert reasons == set(InvalidReason) - {InvalidReason.REJECTED}


def test_the_good_generators_cover_every_type_and_edge_ips() -> None:
    # Hypothesis mixes string constants of the loaded modules into what it draws, so a
    # constant added anywhere shifts the sample: leave room for every type to show up.
    sample = _sample(st.one_of(good_messages(SESSION), good_messages(DIRECTORY)), 600)
    kinds = {m.expect.event.kind for m in sample if isinstance(m.expect, Good)}
    assert kinds == {*SessionEventKind, *DirectoryEventKind}
    for form in ("ipv4_mapped", "ipv4", "ipv6", "ignored_bad_ip", "network"):
        assert any(form in m.category.split("+") for m in sample), form


# ---- minimal examples of what the generators found --------------------------------------
#
# Invalid UTF-8 inside a string the data decoder reads made msgspec raise
# UnicodeDecodeError, which the decoder once did not catch: the consumer task died and
# the daemon exited 1; restarted, it read the same message again (its offset was never
# stored), so one such message stopped the partition. The whole message is now checked
# for UTF-8 first; these are the messages the generators found, kept as regressions.

CRASHERS = [
    (
        SESSION,
        b'{"specversion":"1.0","id":"1","source":"s","type":"e911.session.logout",'
        b'"data":{"account_id":"\xff"}}',
    ),
    (
        DIRECTORY,
        b'{"specversion":"1.0","id":"1","source":"s","type":"e911.account.deleted",'
        b'"data":{"account_id":"\xff"}}',
    ),
    (
        DIRECTORY,
        b'{"specversion":"1.0","id":"1","source":"s","type":"e911.ip_group.upserted",'
        b'"data":{"account_id":"a","ip_group_id":"g","name":"n","addresses":["10.0.0.1\xc0\x80"]}}',
    ),
]


@pytest.mark.parametrize(("topic", "value"), CRASHERS, ids=lambda v: str(v)[:60])
def test_invalid_utf8_in_a_data_field_is_dead_lettered_not_raised(topic: str, value: bytes) -> None:
    result = decode(topic, value)
    assert isinstance(result, Invalid)
    assert result.reason in {InvalidReason.INVALID_JSON, InvalidReason.INVALID_DATA}


# Invalid UTF-8 where nothing reads it (an unknown attribute or data field) is accepted:
# the message is not JSON (RFC 8259 §8.1: UTF-8), so docs/spec.md#dead-letters sends it to dead
# letters.
IGNORED_PLACES = [
    b'{"specversion":"1.0","id":"1","source":"s","type":"e911.account.deleted",'
    b'"data":{"account_id":"a"},"ext":"\xff"}',
    b'{"specversion":"1.0","id":"1","source":"s","type":"e911.account.deleted",'
    b'"data":{"account_id":"a","x":"\xed\xa0\x80"}}',
    b'{"specversion":"1.0","id":"1","source":"s","type":"e911.account.deleted",'
    b'"data":{"account_id":"a"},"\xc0\x80":1}',
]


@pytest.mark.parametrize("value", IGNORED_PLACES, ids=lambda v: str(v)[-30:])
def test_invalid_utf8_in_an_ignored_place_is_invalid_json(value: bytes) -> None:
    result = decode(DIRECTORY, value)
    assert isinstance(result, Invalid)
    assert result.reason is InvalidReason.INVALID_JSON

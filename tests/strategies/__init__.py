"""Hypothesis strategies of hostile inbound messages, each tagged with what must happen.

Every example is a :class:`Tagged`: the Kafka value (bytes, or None), its key, the topic
it goes to, and an expectation derived from how it was built, never from the decoder:

* :class:`Good`: the exact event the decoder must return (and so the state the daemon
  must reach). Good events carry hostile-but-legal content: unknown extra attributes
  and data fields with arbitrary JSON (docs/spec.md#event-contracts: ignored), unicode and
  maximum-length
  ids, edge-but-valid IPs (IPv4-mapped IPv6, ``::``, ``0.0.0.0``, full and compressed
  IPv6), offsets and fractions in times, odd JSON layouts.
* :class:`Bad`: the set of dead-letter reasons (docs/spec.md#dead-letters) acceptable for it. One
fault
  in the structure means exactly one reason; two faults in different places accept
  either fault's reason (their precedence is not part of the contract); a fault in the
  bytes whose reason depends on where a parser notices it (deep nesting inside a known
  attribute: a wrong type or too deep) accepts each. Anything beyond the size limit is
  ``oversized``, whatever else is wrong with it.

Ids of good events embed a process-wide serial number, so that no two good events of a
run touch the same session or directory entity (their effects are checked one by one).
Session event times are drawn relative to the current time (the daemon refuses times
beyond its clock skew allowance), so values must be used soon after they are drawn.

The modules, each building on those before it: ``tags`` (what a message must do),
``text``, ``ips`` and ``times`` (field values), ``good_events`` (bodies and the events
they decode to), ``encoding`` (to bytes, and the size limit), ``body_faults``,
``byte_faults``, ``big`` (at and beyond the size limit), ``binary`` (the CloudEvents
binary content mode: attributes in headers) and ``public`` (the mixes the
tests draw from). This package exports only what the tests use; names with a leading
underscore are shared between its modules but not outside it.
"""

from tests.strategies.big import big_messages
from tests.strategies.binary import (
    BINARY_FAULTS,
    binary_messages,
    faulty_binary_messages,
    good_binary_messages,
)
from tests.strategies.encoding import good_messages
from tests.strategies.public import all_messages, bad_messages, messages, missing_categories
from tests.strategies.tags import DIRECTORY, MAX_EVENT_BYTES, SESSION, Bad, Good, Tagged
from tests.strategies.text import json_values
from tests.strategies.times import MAX_CLOCK_SKEW

__all__ = [
    "BINARY_FAULTS",
    "DIRECTORY",
    "MAX_CLOCK_SKEW",
    "MAX_EVENT_BYTES",
    "SESSION",
    "Bad",
    "Good",
    "Tagged",
    "all_messages",
    "bad_messages",
    "big_messages",
    "binary_messages",
    "faulty_binary_messages",
    "good_binary_messages",
    "good_messages",
    "json_values",
    "messages",
    "missing_categories",
]

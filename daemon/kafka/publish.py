"""Sending a batch of outbox rows, and what happens to a row Kafka refuses for its size.

A record larger than the producer's ``max_request_size`` or the broker's (or the
topic's) maximum message size is refused for good: sent again, it is refused again.
Left in the outbox it would be retried for ever, and every row after it on the owned
partitions would wait behind it. So when a batch is refused for size, its rows are sent
again one at a time, in order (rows already acknowledged are published twice:
subscribers drop the duplicate by its CloudEvents id), and a row refused on its own is
given up: logged (``alert_event_refused``) and counted
(``e911_alert_events_refused_total``), and deleted from the outbox with the rest. The
alert itself stays in the alert history, its payload included.

e911d keeps its own alerts small (docs/spec.md#alerts-topic: a recommendation lists at
most ``E911_CHECKS__MAX_RECOMMENDED_LOCATIONS`` locations of bounded size), so this is
a safety net: a broker configured below the size of a normal alert, or a row another
version wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import msgspec
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

log = structlog.get_logger(__name__)


class OutboxRow(Protocol):
    """A record to publish, as the outbox holds it (:class:`daemon.store.outbox.OutboxRow`)."""

    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...


# Refusals that no retry can cure: the record (or its batch) is too large.
TOO_LARGE: Final = (MessageSizeTooLargeError, RecordListTooLargeError)


class _Head(msgspec.Struct):
    """The CloudEvents attributes that name a refused event in the log."""

    id: str = ""
    type: str = ""


def _head(value: bytes) -> _Head:
    try:
        return msgspec.json.decode(value, type=_Head)
    except msgspec.DecodeError:
        return _Head()


@dataclass(frozen=True, slots=True)
class Refused:
    """A row Kafka refused on its own, and why."""

    row: OutboxRow
    error: str


def _read_outcome(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


async def _send_all(
    producer: AIOKafkaProducer, rows: Sequence[OutboxRow], headers: list[tuple[str, bytes]]
) -> None:
    futures: list[asyncio.Future[object]] = []
    try:
        for r in rows:
            futures.append(await producer.send(r.topic, value=r.value, key=r.key, headers=headers))
        await asyncio.gather(*futures)
    except BaseException:
        # The first failure is reported at once: the relay's transaction holds its rows
        # only for a bounded time (the outbox hold limit), so it must not wait for the
        # rest of the batch to time out one by one. Those settle on their own, their
        # outcome read, so that no error is left unretrieved behind the refusal.
        for future in futures:
            future.add_done_callback(_read_outcome)
        raise


async def publish_rows(
    producer: AIOKafkaProducer, rows: Sequence[OutboxRow], headers: list[tuple[str, bytes]]
) -> list[Refused]:
    """Publish ``rows`` in order; returns those refused for their size (logged here).

    Any other Kafka error propagates: the batch stays in the outbox and is tried again.
    """
    try:
        await _send_all(producer, rows, headers)
        return []
    except TOO_LARGE:
        pass
    refused: list[Refused] = []
    for row in rows:
        try:
            await _send_all(producer, [row], headers)
        except TOO_LARGE as exc:
            refused.append(Refused(row, repr(exc)))
            head = _head(row.value)
            log.error(
                "alert_event_refused",
                alert_event_id=head.id,
                type=head.type,
                outbox_id=row.id,
                topic=row.topic,
                size_bytes=len(row.value),
                reason="too_large",
                error=repr(exc)[:300],
            )
    return refused

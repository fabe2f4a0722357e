"""Kafka clients as components: options from settings, started with the retry policy,
always closed.

A producer that was created but never stopped warns "Unclosed AIOKafkaProducer" and
keeps its sockets: a Ctrl-C during start-up used to leave exactly that. Here the
client is closed on every way out of its block, including a cancelled start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from e911d.config import Settings
from e911d.consumers.loop import ConsumerConfig, close_within
from e911d.daemon.retry import STARTUP, retry


def kafka_options(settings: Settings) -> dict[str, Any]:
    k = settings.kafka
    opts: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap_servers,
        "client_id": k.client_id,
        "security_protocol": k.security_protocol,
        "request_timeout_ms": k.request_timeout_ms,
    }
    if k.sasl_mechanism is not None:
        opts["sasl_mechanism"] = k.sasl_mechanism
        opts["sasl_plain_username"] = k.sasl_username
        opts["sasl_plain_password"] = (
            k.sasl_password.get_secret_value() if k.sasl_password else None
        )
    return opts


def consumer_config(settings: Settings) -> ConsumerConfig:
    k = settings.kafka
    return ConsumerConfig(
        session_topic=k.topics.session_events,
        directory_topic=k.topics.directory_events,
        dead_letter_topic=k.topics.dead_letter,
        group_id=k.group_id,
        max_event_bytes=k.max_event_bytes,
        poll_max_records=k.poll_max_records,
        poll_timeout_ms=k.poll_timeout_ms,
        fetch_max_bytes=k.fetch_max_bytes,
        pause_after_seconds=k.pause_after_seconds,
        max_clock_skew=dt.timedelta(seconds=settings.checks.max_clock_skew_seconds),
        kafka_options={
            **kafka_options(settings),
            "session_timeout_ms": k.session_timeout_ms,
            "heartbeat_interval_ms": k.heartbeat_interval_ms,
        },
    )


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaConnectionError)


def start_client(
    what: str, stop: asyncio.Event
) -> Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]:
    """A starter for a Kafka client: retried with the start-up backoff while the
    broker cannot be reached (it may be booting next to us)."""

    async def start(func: Callable[[], Awaitable[None]]) -> None:
        await retry(f"kafka_{what}_start", func, retry_if=_unreachable, backoff=STARTUP, stop=stop)

    return start


@contextlib.asynccontextmanager
async def open_producer(settings: Settings, stop: asyncio.Event) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=settings.kafka.enable_idempotence,
        max_request_size=max(1_048_576, settings.kafka.max_event_bytes * 2),
        linger_ms=5,
        **kafka_options(settings),
    )
    try:
        await start_client("producer", stop)(producer.start)
        yield producer
    finally:
        await close_within(producer.stop(), 2.0, "producer")

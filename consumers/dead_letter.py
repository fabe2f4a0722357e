"""Bad messages copied to the dead-letter topic, with where they came from and why."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from e911d.daemon.core.events import Invalid

DLQ_TOPIC = "e911.dlq.topic"
DLQ_PARTITION = "e911.dlq.partition"
DLQ_OFFSET = "e911.dlq.offset"
DLQ_REASON = "e911.dlq.reason"
DLQ_DETAIL = "e911.dlq.detail"


async def dead_letter(
    producer: AIOKafkaProducer, topic: str, dead: list[tuple[Any, Invalid]]
) -> None:
    """Copy each bad message unchanged, with where it came from and why; wait for acks.

    The offsets are stored only after the broker has the copies, so a crash here
    repeats a dead letter rather than losing one.
    """
    futures = []
    for msg, invalid in dead:
        headers = [
            *(msg.headers or ()),
            (DLQ_TOPIC, msg.topic.encode()),
            (DLQ_PARTITION, str(msg.partition).encode()),
            (DLQ_OFFSET, str(msg.offset).encode()),
            (DLQ_REASON, str(invalid.reason).encode()),
            (DLQ_DETAIL, invalid.detail.encode("utf-8", "replace")[:500]),
        ]
        futures.append(await producer.send(topic, value=msg.value, key=msg.key, headers=headers))
    await asyncio.gather(*futures)

"""The topics e911d uses: creating them where the broker allows it, and naming a
partition of one the same way in the consumer loop and the offsets it stores."""

from __future__ import annotations

from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = structlog.get_logger("e911d.topics")

# (topic, partition): how the consumer loop and the offsets table name a partition.
TP = tuple[str, int]


async def ensure_topics(
    kafka_options: dict[str, Any], topics: list[str], partitions: int, replication: int
) -> list[str]:
    """Create the missing topics; an unauthorised or failing broker only logs a warning."""
    admin = AIOKafkaAdminClient(**kafka_options)
    created: list[str] = []
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(t, num_partitions=partitions, replication_factor=replication)
                        for t in missing
                    ]
                )
                created = missing
            except TopicAlreadyExistsError:
                pass
            log.info("topics_created", topics=missing, partitions=partitions)
    except KafkaError as exc:
        log.warning("topics_not_created", error=repr(exc), topics=topics)
    finally:
        await admin.close()
    return created

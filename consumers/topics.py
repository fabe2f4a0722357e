"""The topics e911d uses: creating them where the broker allows it, and naming a
partition of one the same way in the consumer loop and the offsets it stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

log = structlog.get_logger(__name__)

# (topic, partition): how the consumer loop and the offsets table name a partition.
TP = tuple[str, int]

BROKER_DEFAULT = -1
"""CreateTopics' "use the broker's default.replication.factor" (KIP-464, Kafka 2.4)."""

_TOPIC_ALREADY_EXISTS = 36  # another instance created it between our list and create


@dataclass(frozen=True, slots=True)
class TopicsReport:
    """What :func:`ensure_topics` found and did, for the log and for tests."""

    created: list[str] = field(default_factory=list)
    # topic -> partitions it has, for existing topics with fewer than configured.
    fewer_partitions: dict[str, int] = field(default_factory=dict)
    # topic -> the broker's error, for topics it refused to create.
    refused: dict[str, str] = field(default_factory=dict)


def _new_topic(name: str, partitions: int, replication: int | None) -> NewTopic:
    # aiokafka's NewTopic refuses replication_factor=-1 without a replica assignment,
    # although the protocol means "the broker's default" by it: set it afterwards.
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replication or 1)
    if replication is None:
        topic.replication_factor = BROKER_DEFAULT
    return topic


async def ensure_topics(
    kafka_options: dict[str, Any], topics: list[str], partitions: int, replication: int | None
) -> TopicsReport:
    """Create the missing topics; report existing ones with fewer partitions than
    configured (never altered: adding partitions moves keys to other partitions,
    which is the operator's call).

    Raises KafkaConnectionError while the broker cannot be reached, so the caller can
    retry; a broker that refuses (no authorisation, a bad replication factor) only
    gets a warning: the topics may well be managed elsewhere.
    """
    admin = AIOKafkaAdminClient(**kafka_options)
    report = TopicsReport()
    try:
        await admin.start()
        # Only the full listing: some brokers (Tansu) auto-create a topic that a
        # metadata request names.
        existing = set(await admin.list_topics())
        present = [t for t in topics if t in existing]
        if present:
            for described in await admin.describe_topics(present):
                count = len(described["partitions"])
                if count < partitions:
                    report.fewer_partitions[described["topic"]] = count
                    log.warning(
                        "topic_has_fewer_partitions",
                        topic=described["topic"],
                        partitions=count,
                        configured=partitions,
                    )
        missing = [t for t in topics if t not in existing]
        if missing:
            response = await admin.create_topics(
                [_new_topic(t, partitions, replication) for t in missing]
            )
            for name, code, *rest in response.topic_errors:
                if code in (0, _TOPIC_ALREADY_EXISTS):
                    report.created.append(name)
                else:
                    report.refused[name] = f"error {code}: {rest[0] if rest else ''}"
            if report.created:
                log.info(
                    "topics_created",
                    topics=report.created,
                    partitions=partitions,
                    replication_factor=replication or "broker default",
                )
            if report.refused:
                log.warning(
                    "topics_not_created",
                    refused=report.refused,
                    replication_factor=replication or "broker default",
                    hint="E911_KAFKA__REPLICATION_FACTOR sets it where the broker has no default",
                )
    except KafkaConnectionError:
        raise
    except KafkaError as exc:
        log.warning("topics_not_created", error=repr(exc), topics=topics)
    finally:
        await admin.close()
    return report

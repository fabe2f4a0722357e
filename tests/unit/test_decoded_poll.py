"""One poll decoded ahead of its store: good events in order with their positions,
bad ones set aside for the dead-letter topic, the next offsets of every partition
read, and the generation it was read in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aiokafka import TopicPartition

from e911d.consumers.decoded import decode_poll
from tests.support import ce, login


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def test_good_and_bad_events_split_and_every_partition_gets_its_next_offset() -> None:
    s0, s1, d0 = TopicPartition("s", 0), TopicPartition("s", 1), TopicPartition("d", 0)
    records = {
        s0: [
            Msg("s", 0, 7, login("acme", "u1", "a", "198.51.100.7")),
            Msg("s", 0, 8, b"\xff not json"),
            Msg("s", 0, 9, login("acme", "u1", "b", "198.51.100.8")),
        ],
        s1: [Msg("s", 1, 3, None), Msg("s", 1, 4, b"x" * 10_000)],
        d0: [
            Msg(
                "d",
                0,
                0,
                ce("e911.account.upserted", {"account_id": "acme", "e911_recommendations": True}),
            )
        ],
    }
    poll = decode_poll(records, "s", 4_096, dt.timedelta(minutes=5), generation=3)
    assert poll.generation == 3
    assert poll.records == 6
    assert poll.offsets == {("s", 0): 10, ("s", 1): 5, ("d", 0): 1}
    assert [e.session_id for _, e in poll.batch.session_events] == ["a", "b"]
    assert poll.batch.session_at == [("s", 0, 7), ("s", 0, 9)]
    assert poll.batch.directory_at == [("d", 0, 0)]
    assert poll.batch.next_offsets == poll.offsets
    assert sorted((m.topic, m.offset, str(i.reason)) for m, i in poll.dead) == [
        ("s", 3, "not_cloudevent"),
        ("s", 4, "oversized"),
        ("s", 8, "invalid_json"),
    ]


def test_an_empty_partition_gets_no_offset() -> None:
    poll = decode_poll({TopicPartition("s", 0): []}, "s", 4_096, dt.timedelta(0), generation=0)
    assert poll.records == 0 and poll.offsets == {} and not poll.good and not poll.dead

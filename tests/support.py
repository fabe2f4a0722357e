"""Helpers shared by integration and e2e tests: events, producing, watching topics."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import RecordMetadata


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ce(type_: str, data: dict[str, Any], time: dt.datetime | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:test",
        "type": type_,
        "datacontenttype": "application/json",
        "data": data,
        **extra,
    }
    if time is not None:
        body["time"] = time.isoformat().replace("+00:00", "Z")
    return json.dumps(body).encode()


Headers = list[tuple[str, bytes]]


def binary(
    structured: bytes, content_type: str | None = "application/json"
) -> tuple[bytes, Headers]:
    """The same event in the CloudEvents Kafka binary content mode: (value, headers).

    Attributes become ``ce_*`` headers, ``datacontenttype`` the ``content-type`` header
    (``content_type`` replaces it; None leaves it out), the data the value.
    """
    body = json.loads(structured)
    data = body.pop("data")
    body.pop("datacontenttype", None)
    headers = [(f"ce_{k}", str(v).encode()) for k, v in body.items() if v is not None]
    if content_type is not None:
        headers.append(("content-type", content_type.encode()))
    return json.dumps(data).encode(), headers


def _session_data(
    account: str, user: str, session: str, ip: str, network: dict[str, Any] | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"account_id": account, "user_id": user, "session_id": session}
    data["ip"] = ip
    if network is not None:
        data["network"] = network
    return data


def login(
    account: str,
    user: str,
    session: str,
    ip: str,
    at: dt.datetime | None = None,
    network: dict[str, Any] | None = None,
) -> bytes:
    return ce("e911.session.login", _session_data(account, user, session, ip, network), at or now())


def ip_changed(
    account: str,
    user: str,
    session: str,
    ip: str,
    at: dt.datetime | None = None,
    network: dict[str, Any] | None = None,
) -> bytes:
    data = _session_data(account, user, session, ip, network)
    return ce("e911.session.ip_changed", data, at or now())


def logout(account: str, user: str, session: str, at: dt.datetime | None = None) -> bytes:
    return ce(
        "e911.session.logout",
        {"account_id": account, "user_id": user, "session_id": session},
        at or now(),
    )


def dismissed(account: str, user: str, session: str, alert_id: str) -> bytes:
    return ce(
        "e911.alert.dismissed",
        {"account_id": account, "user_id": user, "session_id": session, "alert_id": alert_id},
        now(),
    )


def location_changed(account: str, user: str, location: str, via: str = "app") -> bytes:
    """The user's assigned E911 location changed (in the app, by default)."""
    return ce(
        "e911.user.location_changed",
        {"account_id": account, "user_id": user, "e911_location_id": location, "changed_via": via},
    )


# The addresses of directory()'s locations, and what an alert shows of them
# (docs/spec.md#dispatchable-addresses).
ADDRESSES: dict[str, dict[str, str]] = {
    "hq": {
        "street": "100 Main St",
        "building": "2",
        "floor": "3",
        "unit": "Suite 301",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    },
    "home": {
        "street": "12 Elm St",
        "unit": "2B",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62704",
        "country": "US",
    },
    "lab": {"street": "1 Main St", "city": "Springfield", "country": "US"},
}
LINES: dict[str, str] = {
    "hq": "100 Main St, Building 2, Floor 3, Suite 301, Springfield, IL 62701, US",
    "home": "12 Elm St, Unit 2B, Springfield, IL 62704, US",
    "lab": "1 Main St, Springfield, US",
}


def directory(
    account: str = "acme",
    *,
    account_on: bool = True,
    users: dict[str, tuple[bool, str | None]] | None = None,
) -> list[bytes]:
    """A small directory: hq (203.0.113.0/24), home (198.51.100.0/24), lab (no groups)."""
    events = [
        ce("e911.account.upserted", {"account_id": account, "e911_recommendations": account_on}),
    ]
    for lid, name in (("hq", "Headquarters"), ("home", "Home office"), ("lab", "Lab")):
        events.append(
            ce(
                "e911.location.upserted",
                {
                    "account_id": account,
                    "location_id": lid,
                    "name": name,
                    "address": ADDRESSES[lid],
                },
            )
        )
    events.append(
        ce(
            "e911.ip_group.upserted",
            {
                "account_id": account,
                "ip_group_id": "hq-net",
                "name": "HQ",
                "location_id": "hq",
                "addresses": ["203.0.113.0/24"],
            },
        )
    )
    events.append(
        ce(
            "e911.ip_group.upserted",
            {
                "account_id": account,
                "ip_group_id": "home-net",
                "name": "Home",
                "location_id": "home",
                "addresses": ["198.51.100.0-198.51.100.255"],
            },
        )
    )
    for uid, (enabled, loc) in (users or {"u1": (False, "hq")}).items():
        events.append(
            ce(
                "e911.user.upserted",
                {
                    "account_id": account,
                    "user_id": uid,
                    "e911_recommendations": enabled,
                    "e911_location_id": loc,
                },
            )
        )
    return events


@dataclass
class Topics:
    session_events: str
    directory_events: str
    alerts: str
    dead_letter: str

    @classmethod
    def unique(cls) -> Topics:
        p = f"t{uuid.uuid4().hex[:10]}"
        return cls(f"{p}.sessions", f"{p}.directory", f"{p}.alerts", f"{p}.dlq")

    def as_settings(self) -> dict[str, str]:
        return {
            "session_events": self.session_events,
            "directory_events": self.directory_events,
            "alerts": self.alerts,
            "dead_letter": self.dead_letter,
        }


async def http_get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """One plain HTTP/1.1 request to the daemon's operations port: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def http_fetch(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.0 request (so no chunked answer) to a server on this machine:
    (status, lower-cased headers, raw body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {path} HTTP/1.0", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


def sample(app: Any, name: str, **labels: str) -> float:
    """A metric value of a running App (0 when the series does not exist yet)."""
    value = app.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


async def eventually(
    condition: Callable[[], Any], within: float = 20.0, step: float = 0.05
) -> None:
    """Poll a cheap condition of in-process state (metrics, rows) until it holds."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(step)


async def wait_consumed(app: Any, topic: str, type_: str, n: int, within: float = 20.0) -> None:
    """Until ``n`` events of a type from a topic are durably applied by the app."""
    await eventually(lambda: sample(app, "e911_events_total", topic=topic, type=type_) == n, within)


class Producer:
    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> Producer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(
        self, topic: str, value: bytes | None, key: str = "k", headers: list[Any] | None = None
    ) -> RecordMetadata:
        """Produce one message; where it landed (``.partition``, ``.offset``)."""
        metadata: RecordMetadata = await self._producer.send_and_wait(
            topic, value, key=key.encode(), headers=headers
        )
        return metadata

    async def send_all(self, topic: str, values: list[bytes], key: str = "k") -> None:
        for v in values:
            await self.send(topic, v, key)


@dataclass
class Received:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int
    received_at: dt.datetime
    header_list: list[tuple[str, bytes | None]] = field(default_factory=list)  # in order

    @property
    def event(self) -> dict[str, Any]:
        assert self.value is not None
        parsed: dict[str, Any] = json.loads(self.value)
        return parsed

    @property
    def type(self) -> str:
        return str(self.event["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.event["data"]
        return data


@dataclass
class TopicWatcher:
    """Reads a topic from the beginning in the background; tests wait on what arrives."""

    bootstrap: str
    topic: str
    messages: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicWatcher:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            metadata_max_age_ms=500,
        )
        await consumer.start()

        async def pump() -> None:
            try:
                async for msg in consumer:
                    rec = Received(
                        msg.key,
                        msg.value,
                        dict(msg.headers or ()),
                        msg.timestamp,
                        now(),
                        list(msg.headers or ()),
                    )
                    async with self._changed:
                        self.messages.append(rec)
                        self._changed.notify_all()
            finally:
                await consumer.stop()

        self._task = asyncio.create_task(pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], within: float = 20.0
    ) -> list[Received]:
        async with asyncio.timeout(within):
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.messages))
        return list(self.messages)

    async def wait_count_all(self, n: int, within: float = 20.0) -> list[Received]:
        """Until ``n`` messages of any kind have arrived."""
        return await self.wait_for(lambda got: len(got) >= n, within)

    def of_type(self, type_: str, session_id: str | None = None) -> list[Received]:
        return [
            m
            for m in self.messages
            if m.value is not None
            and m.type == type_
            and (session_id is None or m.data.get("session_id") == session_id)
        ]

    async def wait_count(
        self, type_: str, n: int, session_id: str | None = None, within: float = 20.0
    ) -> list[Received]:
        await self.wait_for(lambda _m: len(self.of_type(type_, session_id)) >= n, within)
        return self.of_type(type_, session_id)

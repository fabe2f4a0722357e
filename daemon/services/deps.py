"""The one value every service receives: what the root built, nothing optional.

Services used to reach into the application object for the pool, the producer and
the schedule, each guarded by ``assert self.pool is not None``. The root now builds
this once, after every component has started, and hands the same frozen value to
each service; a service that holds one can use all of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer

from e911d.config import Settings
from e911d.daemon.core.confirmed_network import KeyPrefixes
from e911d.daemon.core.memo import MemoBook
from e911d.daemon.services.metrics import Metrics
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.confirmed_networks import LearningConfig
from e911d.daemon.store.directory import DirectoryCache
from e911d.schedulers import CheckSchedule


def utcnow() -> dt.datetime:
    """The wall clock, aware and in UTC: what every stored and published time uses."""
    return dt.datetime.now(dt.UTC)


def learning_config(settings: Settings) -> LearningConfig:
    """The ``learning`` settings as the checks, ingest and housekeeping use them."""
    learning = settings.learning
    return LearningConfig(
        per_user=learning.confirmed_networks_per_user,
        ttl=dt.timedelta(seconds=learning.confirmed_network_ttl_seconds),
        prefixes=KeyPrefixes(learning.ipv4_prefix, learning.ipv6_prefix),
        session_ttl=dt.timedelta(seconds=settings.checks.session_ttl_seconds),
    )


@dataclass(slots=True)
class Ownership:
    """Which session-event partitions this instance owns, and whether they are loaded."""

    partitions: set[int] = field(default_factory=set)
    loaded: bool = False


@dataclass(slots=True)
class Health:
    """The last thing each dependency told us, for the up gauges between probes."""

    database: bool = False
    kafka: bool = False


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    metrics: Metrics
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    schedule: CheckSchedule
    ownership: Ownership
    cache: DirectoryCache
    alerts: AlertStore
    # Checks decided from memory (daemon/core/memo.py): ingest and notices make memos stale.
    memos: MemoBook
    health: Health
    # Set when the daemon is asked to stop: services start no new work after it.
    stopping: asyncio.Event

"""Prometheus metrics (docs/spec.md#metrics). No IP address or user id ever becomes a label.

Each daemon gets its own registry, so several instances can live in one test process;
the standard process, platform and GC collectors are registered on that registry too
(not on the global one), so every instance's /metrics carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from e911d import __version__
from e911d.daemon.core.confirmed_network import Confirmation
from e911d.daemon.core.events import DirectoryEventKind, InvalidReason, SessionEventKind
from e911d.daemon.core.geo import LookupResult
from e911d.daemon.core.model import Outcome, ResolveReason
from e911d.daemon.store.notify import KINDS as NOTICE_KINDS

# Check lateness: fine around the goal (p99 within 2 s) and the alert's threshold (30 s,
# a bound here so the rule's quantile is exact there), then up to a few default
# intervals (300 s) for an instance that has fallen far behind, so that a p99 reads
# within its bucket instead of "somewhere up to 300 s" (benchmarks/README.md).
LATENESS_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    1.5,
    2,
    3,
    5,
    10,
    20,
    30,
    60,
    120,
    300,
    600,
    1200,
)

# An alert may stay open from seconds (the user moves back) to days (nobody acts).
OPEN_DURATION_BUCKETS = (
    10,
    60,
    300,
    900,
    1200,
    3600,
    2 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
)


# Every value the code passes as ``operation`` to e911_database_errors_total and
# e911_kafka_errors_total (tests/unit/test_metrics.py greps the code and fails when a new
# one is not listed here): each starts at 0, so rate() and an alert rule see its first
# error, and a dashboard panel has a series before anything failed.
DATABASE_OPERATIONS = (
    "check_inputs",
    "checked_sessions",
    "gauges",
    "reevaluate",
    "relay",
    "unconfigured_networks",
    "unconfigured_summary",
)
KAFKA_OPERATIONS = ("relay",)


def _registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=_registry)

    def __post_init__(self) -> None:
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Info("e911_build", "The running e911d version", registry=r)
        self.build_info.info({"version": __version__})
        self.ready = Gauge(
            "e911_ready", "1 when the last readiness evaluation found every check ok", registry=r
        )
        self.events = Counter(
            "e911_events_total", "Inbound events decoded", ["topic", "type"], registry=r
        )
        self.events_invalid = Counter(
            "e911_events_invalid_total",
            "Inbound messages dead-lettered, by reason",
            ["reason"],
            registry=r,
        )
        self.sessions_active = Gauge(
            "e911_sessions_active", "Sessions scheduled on this instance", registry=r
        )
        self.checks = Counter(
            "e911_checks_total", "Checks run, by outcome", ["outcome"], registry=r
        )
        self.checks_in_memory = Counter(
            "e911_checks_decided_in_memory_total",
            "Checks decided from memory, without a database round trip (also in checks_total)",
            registry=r,
        )
        self.unconfigured_sightings = Counter(
            "e911_unconfigured_sightings_recorded_total",
            "Sessions on a network no IP group located, recorded once per network and UTC day",
            registry=r,
        )
        self.unconfigured_dropped = Counter(
            "e911_unconfigured_networks_dropped_total",
            "Networks nobody configured not kept: beyond the busiest per account and day",
            registry=r,
        )
        self.check_lateness = Histogram(
            "e911_check_lateness_seconds",
            "Check run time minus due time",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.alerts_raised = Counter("e911_alerts_raised_total", "Alerts raised", registry=r)
        self.alerts_resolved = Counter(
            "e911_alerts_resolved_total", "Alerts resolved, by reason", ["reason"], registry=r
        )
        self.alerts_open = Gauge(
            "e911_alerts_open", "Open alerts of the partitions this instance owns", registry=r
        )
        self.alert_open_duration = Histogram(
            "e911_alert_open_duration_seconds",
            "From raised to resolved, observed at resolution, by reason",
            ["reason"],
            buckets=OPEN_DURATION_BUCKETS,
            registry=r,
        )
        self.accounts_without_locations = Gauge(
            "e911_accounts_without_locations",
            "Accounts with recommendations on for someone and no location at all"
            " (their checks end no_locations: no alert can be raised)",
            registry=r,
        )
        self.outbox_pending = Gauge(
            "e911_outbox_pending", "Alert events decided but not yet published", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "e911_outbox_oldest_age_seconds",
            "Age of the oldest alert event not yet published (0 when none)",
            registry=r,
        )
        self.alerts_published = Counter(
            "e911_alert_events_published_total", "Alert events acknowledged by Kafka", registry=r
        )
        self.alerts_refused = Counter(
            "e911_alert_events_refused_total",
            "Alert events Kafka refused for good (too large) and the relay gave up",
            ["reason"],
            registry=r,
        )
        self.asyncio_tasks = Gauge(
            "e911_asyncio_tasks",
            "Tasks alive in the daemon's event loop, counted with the other gauges (a count"
            " that only grows is a leak: make soak watches it)",
            registry=r,
        )
        self.db_up = Gauge(
            "e911_database_up", "1 when PostgreSQL answered the last probe", registry=r
        )
        self.db_errors = Counter(
            "e911_database_errors_total",
            "Database operations that failed",
            ["operation"],
            registry=r,
        )
        self.kafka_up = Gauge(
            "e911_kafka_up", "1 when the broker answered the last probe", registry=r
        )
        self.kafka_errors = Counter(
            "e911_kafka_errors_total", "Kafka operations that failed", ["operation"], registry=r
        )
        self.partitions_owned = Gauge(
            "e911_partitions_owned", "Session-event partitions owned by this instance", registry=r
        )
        self.partitions_in_topic = Gauge(
            "e911_partitions_in_topic",
            "Partitions of the session-events topic, from the broker's metadata at the last"
            " assignment (sum of e911_partitions_owned over instances should equal it)",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "e911_consumer_lag_messages",
            "Messages not yet consumed, by topic",
            ["topic"],
            registry=r,
        )
        self.consumer_paused = Gauge(
            "e911_consumer_paused",
            "1 while fetching is paused because a batch waits on the database",
            registry=r,
        )
        self.batch_duration = Histogram(
            "e911_batch_duration_seconds",
            "Time to apply one consumed batch, by kind",
            ["kind"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
            registry=r,
        )
        self.dismissals_ignored = Counter(
            "e911_dismissals_ignored_total",
            "Dismissals naming no open alert of the session (wrong id, already resolved)",
            registry=r,
        )
        self.directory_notices = Counter(
            "e911_directory_notices_total",
            "Directory change notices heard from PostgreSQL, by kind",
            ["kind"],
            registry=r,
        )
        self.reevaluations = Counter(
            "e911_reevaluations_total",
            "Sessions re-evaluated at once because their directory entry changed",
            registry=r,
        )
        self.reevaluation_delay = Histogram(
            "e911_reevaluation_delay_seconds",
            "From the first notice of a pass to its alert transitions committed",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.listener_up = Gauge(
            "e911_directory_listener_up",
            "1 while the LISTEN connection for directory notices is healthy",
            registry=r,
        )
        self.rebalance_errors = Counter(
            "e911_rebalance_errors_total", "Rebalance listener failures", registry=r
        )
        self.database_rewinds = Counter(
            "e911_database_rewinds_total",
            "Times the database held older offsets than this instance had stored there "
            "(a failover lost commits): the owned partitions were reloaded and consumed again",
            registry=r,
        )
        self.geoip_lookups = Counter(
            "e911_geoip_lookups_total",
            "GeoIP look-ups of undetermined sessions (docs/spec.md#geolocation-check), by result",
            ["result"],
            registry=r,
        )
        self.confirmations = Counter(
            "e911_confirmations_total",
            "Location changes made in the app (docs/spec.md#networks-a-user-confirmed): "
            "learned as a confirmed network, or why not",
            ["result"],
            registry=r,
        )
        # Every known label value starts at 0: a series that appears at its first event
        # hides that event from rate() and increase(), and an alert rule on it never fires.
        for reason in InvalidReason:
            self.events_invalid.labels(reason=str(reason))
        for result in LookupResult:
            self.geoip_lookups.labels(result=str(result))
        for confirmation in Confirmation:
            self.confirmations.labels(result=str(confirmation))
        for outcome in Outcome:
            self.checks.labels(outcome=str(outcome))
        for resolve in ResolveReason:
            self.alerts_resolved.labels(reason=str(resolve))
            self.alert_open_duration.labels(reason=str(resolve))
        for operation in DATABASE_OPERATIONS:
            self.db_errors.labels(operation=operation)
        for operation in KAFKA_OPERATIONS:
            self.kafka_errors.labels(operation=operation)
        self.alerts_refused.labels(reason="too_large")
        for kind in NOTICE_KINDS:
            self.directory_notices.labels(kind=kind)

    def known_topics(self, session_topic: str, directory_topic: str) -> None:
        """Start e911_events_total at 0 for every event type of the configured topics:
        the topic names are settings, so this runs once they are known. Without it the
        first event of a type makes a series at 1, which rate() reads as no event, and
        E911SessionEventsStopped would count a restarted instance's first hour as silent.
        """
        for topic, kinds in (
            (session_topic, SessionEventKind),
            (directory_topic, DirectoryEventKind),
        ):
            for kind in kinds:
                self.events.labels(topic=topic, type=str(kind))

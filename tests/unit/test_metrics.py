"""The daemon's registry: its own standard collectors and the names docs/spec.md#metrics asks
for."""

from __future__ import annotations

import re
from pathlib import Path

from e911d import __version__
from e911d.daemon.core.events import DirectoryEventKind, SessionEventKind
from e911d.daemon.services.metrics import DATABASE_OPERATIONS, KAFKA_OPERATIONS, Metrics
from e911d.daemon.store.notify import KINDS as NOTICE_KINDS


def test_each_metrics_has_its_own_process_collectors():
    """Two daemons in one process: each registry carries the standard collectors, and
    registering them twice does not collide."""
    a, b = Metrics(), Metrics()
    for m in (a, b):
        assert m.registry.get_sample_value("process_resident_memory_bytes") is not None
        assert m.registry.get_sample_value("e911_build_info", {"version": __version__}) == 1
        gc = m.registry.get_sample_value("python_gc_objects_collected_total", {"generation": "0"})
        assert gc is not None
        assert m.registry.get_sample_value("python_info", dict(_python_labels(m))) == 1
    # Each registry is its own: a sample set on one does not show on the other.
    a.sessions_active.set(3)
    assert b.registry.get_sample_value("e911_sessions_active") == 0


def _python_labels(m: Metrics) -> dict[str, str]:
    for family in m.registry.collect():
        if family.name == "python_info":
            return dict(family.samples[0].labels)
    raise AssertionError("no python_info family")


def test_names_follow_the_prometheus_conventions():
    """Durations end in _seconds, counters in _total; histograms are in seconds."""
    families = {f.name: f.type for f in Metrics().registry.collect()}
    ours = {n: t for n, t in families.items() if n.startswith("e911_")}
    for name in (
        "e911_alert_open_duration_seconds",
        "e911_batch_duration_seconds",
        "e911_check_lateness_seconds",
        "e911_outbox_oldest_age_seconds",
        "e911_ready",
        "e911_build",
    ):
        assert name in ours, name
    assert "e911_batch_seconds" not in ours
    for name, kind in ours.items():
        if kind == "histogram":
            assert name.endswith("_seconds"), name


def _operations_in_code(attribute: str) -> set[str]:
    """Every literal ``operation=`` the product code passes to ``metrics.<attribute>``."""
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(rf"\.{attribute}\.labels\(\s*operation=\"(\w+)\"")
    found: set[str] = set()
    for folder in ("daemon", "consumers", "schedulers", "config"):
        for path in (root / folder).rglob("*.py"):
            found |= set(pattern.findall(path.read_text("utf-8")))
    return found


def test_error_counters_have_a_series_at_zero_for_every_operation_from_the_start():
    """A labeled counter's series appears at its first increment, which rate() and
    increase() then cannot see: every operation must be exported at 0 before any error
    (docs/spec.md#metrics), and a new operation in the code must be listed too."""
    assert _operations_in_code("db_errors") == set(DATABASE_OPERATIONS)
    assert _operations_in_code("kafka_errors") == set(KAFKA_OPERATIONS)
    m = Metrics()
    for name, operations in (
        ("e911_database_errors_total", DATABASE_OPERATIONS),
        ("e911_kafka_errors_total", KAFKA_OPERATIONS),
    ):
        for operation in operations:
            assert m.registry.get_sample_value(name, {"operation": operation}) == 0, (
                name,
                operation,
            )
    for kind in NOTICE_KINDS:
        assert m.registry.get_sample_value("e911_directory_notices_total", {"kind": kind}) == 0


def test_the_topic_partition_gauge_exists_for_the_unowned_partitions_alert():
    """E911PartitionsUnowned compares the owned partitions with this gauge."""
    m = Metrics()
    assert m.registry.get_sample_value("e911_partitions_in_topic") == 0
    m.partitions_in_topic.set(12)
    assert m.registry.get_sample_value("e911_partitions_in_topic") == 12


def test_events_start_at_zero_for_every_type_of_the_configured_topics():
    """E911SessionEventsStopped reads rate(e911_events_total): a series born at 1 would
    read as no event at all, so each topic and type is exported at 0 once the topics
    are known."""
    m = Metrics()
    assert (
        m.registry.get_sample_value(
            "e911_events_total", {"topic": "s", "type": str(SessionEventKind.LOGIN)}
        )
        is None
    )
    m.known_topics("s", "d")
    for topic, kinds in (("s", SessionEventKind), ("d", DirectoryEventKind)):
        for kind in kinds:
            labels = {"topic": topic, "type": str(kind)}
            assert m.registry.get_sample_value("e911_events_total", labels) == 0, labels

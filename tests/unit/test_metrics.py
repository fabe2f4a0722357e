"""The daemon's registry: its own standard collectors and the names docs/spec.md#metrics asks
for."""

from __future__ import annotations

from e911d import __version__
from e911d.daemon.services.metrics import Metrics


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

"""The alerting rules as an SRE receives them: every alert labelled, annotated and
pointing at a runbook section that exists (promtool checks the PromQL itself)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import yaml

from e911d.daemon.services.metrics import LATENESS_BUCKETS, Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "e911d-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "e911d-rules.test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/e911d/e911d/blob/main/docs/runbook.md#"
REQUIRED = {
    "E911DaemonDown",
    "E911NotReady",
    "E911ConsumerLagGrowing",
    "E911CheckLatenessHigh",
    "E911NoChecksWhileSessions",
    "E911OutboxStuck",
    "E911DeadLettersArriving",
    "E911DatabaseDown",
    "E911BrokerDown",
    "E911DirectoryListenerDown",
    "E911PartitionsUnowned",
    "E911ConsumerPausedLong",
    "E911SessionEventsStopped",
    "E911RebalanceErrors",
}
# Runbook sections for what has no alert but an operator meets (docs/runbook.md).
OPERATIONS = {
    "a-pod-does-not-start-migrations-pending",
    "oomkilled-memory-limit",
    "rotating-credentials-and-certificates",
    "adding-partitions",
    "restoring-the-database",
}


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            out.add(text.replace(" ", "-"))
    return out


def test_the_required_alerts_exist_once_each():
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names))
    assert REQUIRED <= set(names), REQUIRED - set(names)


def test_every_alert_has_severity_summary_description_and_a_runbook_section():
    anchors = _anchors(RUNBOOK.read_text())
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        notes = alert["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), name
        url = notes["runbook_url"]
        assert url.startswith(RUNBOOK_URL), name
        assert url.removeprefix(RUNBOOK_URL) in anchors, f"{name}: no section for {url}"


def test_every_alert_has_a_case_that_fires_and_one_that_stays_silent():
    doc = yaml.safe_load(RULE_TESTS.read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names <= fires, names - fires
    assert names <= silent, names - silent


def test_anchor_rule_matches_github():
    assert _anchors("## E911DaemonDown\n## Why these alerts matter") == {
        "e911daemondown",
        "why-these-alerts-matter",
    }


def test_dead_letters_need_more_than_one_bad_event_and_time_to_fire():
    """One bad event must not page: the rule has a threshold above 1 and a ``for``."""
    (rule,) = [a for a in _alerts() if a["alert"] == "E911DeadLettersArriving"]
    threshold = re.search(r">\s*(\d+)\s*$", rule["expr"].strip())
    assert threshold is not None and int(threshold.group(1)) >= 1, rule["expr"]
    assert rule.get("for") in ("10m", "15m", "20m", "30m"), rule.get("for")


def test_the_runbook_covers_the_operations_and_its_links_resolve():
    """Operations without an alert have sections, and every in-page link lands on one;
    the kubectl label selectors are the manifests' labels, not a bare ``app=``."""
    text = RUNBOOK.read_text()
    anchors = _anchors(text)
    assert OPERATIONS <= anchors, OPERATIONS - anchors
    links = set(re.findall(r"\]\(#([\w-]+)\)", text))
    assert links <= anchors, links - anchors
    assert "-l app=" not in text
    assert "-l app.kubernetes.io/name=e911d" in text


def test_the_lateness_threshold_and_goal_are_bounds_of_the_histogram():
    """histogram_quantile interpolates within a bucket: the alert's threshold (30 s) and
    the benchmark's goal (p99 within 2 s) must be bucket bounds so that "above" and
    "within" are read exactly there, and past a minute the buckets must stay narrow
    enough (each at most 2.5 x the last) that a p99 of a lagging instance is told
    apart from "somewhere up to 300 s", as the old buckets did."""
    (rule,) = [a for a in _alerts() if a["alert"] == "E911CheckLatenessHigh"]
    threshold = re.search(r">\s*(\d+(?:\.\d+)?)\s*$", rule["expr"].strip())
    assert threshold is not None, rule["expr"]
    assert float(threshold.group(1)) in LATENESS_BUCKETS
    assert 2 in LATENESS_BUCKETS
    bounds = list(LATENESS_BUCKETS)
    assert bounds == sorted(bounds) and bounds[-1] >= 600
    for low, high in itertools.pairwise(bounds):
        assert high <= 2.5 * low, (low, high)
    exported = {
        s.labels["le"]
        for family in Metrics().registry.collect()
        if family.name == "e911_check_lateness_seconds"
        for s in family.samples
        if s.name.endswith("_bucket")
    }
    assert {"2.0", "30.0", "120.0", "+Inf"} <= exported

"""Monitoring deployed the way deploy/README.md says, checked end to end.

The job label is where a Prometheus Operator deployment and the rules or dashboard
silently part ways: the Operator names the job after the Service unless the
ServiceMonitor's ``jobLabel`` names a Service label, and a rule selecting another job
fires E911DaemonDown forever over a healthy daemon. So the job is derived here from the
rendered manifests exactly as the Operator would, and everything is checked under it:
every selector of the rules and the dashboard (docs/spec.md#metrics; both generated
from deploy/monitoring.yaml), the shipped PrometheusRule and dashboard ConfigMap
against their source files, and a real Prometheus scraping a live daemon under that
job and namespace with the shipped rules loaded: nothing pending or firing while
healthy, E911DaemonDown pending once it stops, every dashboard query answering.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from e911d.daemon.services.metrics import Metrics
from tests.e2e.test_kubernetes import BASE, TWO_REPLICAS, by_kind, render
from tests.prometheus_server import prometheus_servers
from tests.support import Producer, TopicWatcher, directory, eventually, http_fetch, login

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "e911d-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "e911d.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
GENERATOR = ROOT / "deploy" / "prometheus" / "prometheusrule.py"
SELECTORS = ROOT / "deploy" / "monitoring.yaml"
# Columns and other names in the runbook that start like a metric but are not one.
NOT_METRICS = {"e911_recommendations"}

pytestmark = pytest.mark.e2e


def operator_job(objects: list[dict[str, Any]]) -> tuple[str, str]:
    """(job, namespace) of the ServiceMonitor's targets, as the Prometheus Operator sets
    them: job is the value of the Service label named by ``spec.jobLabel`` when it is set
    and the Service has it, else the Service's name; namespace is the Service's."""
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    spec = monitors[0]["spec"]
    wanted = spec["selector"]["matchLabels"]
    services = [
        o
        for o in objects
        if o["kind"] == "Service"
        and wanted.items() <= o["metadata"].get("labels", {}).items()
        and o["metadata"].get("namespace") == monitors[0]["metadata"].get("namespace")
    ]
    assert len(services) == 1, services
    meta = services[0]["metadata"]
    job = meta["labels"].get(spec.get("jobLabel", ""), meta["name"])
    return str(job), str(meta.get("namespace", "default"))


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return doc


def _dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def _rule_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text("utf-8"))["groups"]
    return [(r["alert"], r["expr"]) for g in groups for r in g["rules"]]


def _selectors(expr: str) -> list[tuple[str, str]]:
    """(metric, label matchers) of every vector selector in a PromQL expression."""
    found = re.findall(r"\b((?:e911|process|up)\w*)\s*(\{[^}]*\})?", expr)
    return [(m, sel) for m, sel in found if not m.startswith("e911d")]


def test_the_operator_job_is_what_rules_and_dashboard_select() -> None:
    """The rendered ServiceMonitor and Service give job e911d, deploy/monitoring.yaml's
    job; every selector of every rule names exactly that job, and every dashboard query
    the $job and $namespace variables, whose default is that job. The rules and the
    dashboard are what the generator derives from deploy/monitoring.yaml."""
    source = yaml.safe_load(SELECTORS.read_text("utf-8"))
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    for tree in (BASE, TWO_REPLICAS):
        job, _ = operator_job(render(tree))
        assert job == "e911d", tree
        assert job == source["job"], tree
        # Without jobLabel the Operator would name the job after the Service.
        unlabeled = [dict(o) for o in render(tree)]
        for o in unlabeled:
            if o["kind"] == "ServiceMonitor":
                o["spec"] = {k: v for k, v in o["spec"].items() if k != "jobLabel"}
        assert operator_job(unlabeled)[0] == "e911d-metrics"
    for name, expr in _rule_exprs():
        selectors = _selectors(expr)
        assert selectors, name
        for metric, matchers in selectors:
            assert f'job="{job}"' in matchers, f"{name}: {metric}{matchers}"
            assert f'namespace=~"{source["namespace"]}"' in matchers, f"{name}: {metric}"
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["job"]["current"]["value"] == job
    assert variables["namespace"]["allValue"] == ".*"
    assert variables["namespace"]["allValue"] == source["namespace"]
    assert 'job="$job"' in variables["instance"]["query"]["query"]
    for title, expr in _dashboard_exprs():
        for metric, matchers in _selectors(expr):
            assert 'job="$job"' in matchers, f"{title}: {metric}{matchers}"
            assert 'namespace=~"$namespace"' in matchers, f"{title}: {metric}{matchers}"


def test_the_prometheusrule_and_dashboard_configmap_are_the_shipped_files() -> None:
    """One source each: the rendered PrometheusRule holds exactly the rules file's
    groups, and the sidecar-labelled ConfigMap exactly the dashboard file."""
    rules = yaml.safe_load(RULES.read_text("utf-8"))["groups"]
    for tree in (BASE, TWO_REPLICAS):
        objects = by_kind(render(tree))
        assert objects["PrometheusRule"]["spec"]["groups"] == rules
        dashboard = objects["ConfigMap/e911d-dashboard"]
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert dashboard["metadata"]["name"] == "e911d-dashboard"  # no hash suffix
        assert dashboard["data"] == {"e911d.json": DASHBOARD.read_text("utf-8")}
        # The generator's options reach only the monitoring objects.
        assert "grafana_dashboard" not in objects["ConfigMap"]["metadata"].get("labels", {})
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_every_metric_the_runbook_names_is_on_the_dashboard() -> None:
    """An operator sent to a metric by the runbook finds it on a panel."""
    suffixes = {"counter": ("_total",), "histogram": ("", "_bucket", "_count", "_sum")}
    families = {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    named = set(re.findall(r"\be911_[a-z_]*[a-z]\b", RUNBOOK.read_text("utf-8"))) - NOT_METRICS
    assert named, "the runbook names no metric"
    unknown = {n for n in named if n not in families}
    assert unknown == set(), f"the runbook names metrics that do not exist: {unknown}"
    exprs = " ".join(expr for _, expr in _dashboard_exprs())
    missing = {
        n for n in named if re.sub(r"_(bucket|count|sum)$", "", n) not in exprs and n not in exprs
    }
    assert missing == set(), missing


@dataclass(frozen=True, slots=True)
class Prometheus:
    port: int
    log: Path

    async def get(self, path: str) -> Any:
        status, _, body = await http_fetch(self.port, path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.get(f"/api/v1/query?query={quote(expr)}")
        result: list[dict[str, Any]] = data["result"]
        return result

    async def alerts(self) -> list[dict[str, Any]]:
        data = await self.get("/api/v1/alerts")
        found: list[dict[str, Any]] = data["alerts"]
        return found

    async def wait(self, what: str, condition: Any, within: float = 30.0) -> None:
        """Poll ``condition`` (async, cheap) until true; fail naming ``what``."""
        try:
            await eventually(condition, within=within, step=0.2)
        except TimeoutError:
            raise AssertionError(f"{what}\n{self.log.read_text()[-2000:]}") from None


@pytest.fixture
async def operator_prometheus(tmp_path: Path) -> AsyncIterator[Any]:
    """Starts a real Prometheus scraping one target under the job and namespace the
    Operator would give it (1 s scrapes, rules evaluated every second), with the
    shipped rules file loaded; stopped afterwards."""
    async with prometheus_servers(tmp_path) as start_server:

        async def start(target_port: int, job: str, namespace: str) -> Prometheus:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": job,
                        "static_configs": [
                            {
                                "targets": [f"127.0.0.1:{target_port}"],
                                "labels": {"namespace": namespace},
                            }
                        ],
                    }
                ],
            }
            server = await start_server(config)
            return Prometheus(server.port, server.log)

        yield start


async def test_deployed_as_the_readme_says_monitoring_sees_the_daemon(
    operator_prometheus, broker, topics, make_settings, start_app
):
    job, namespace = operator_job(render(TWO_REPLICAS))
    running = await start_app(make_settings())
    assert running.app.http is not None
    prometheus = await operator_prometheus(running.app.http.port, job, namespace)
    sel = f'job="{job}", namespace="{namespace}"'

    async def scraped_ready() -> bool:
        return bool(await prometheus.query(f"e911_ready{{{sel}}} == 1"))

    # Monitored before any traffic, as in production: every counter's first sample is
    # its 0, so the first event is an increase (a series first seen at 1 is not).
    await prometheus.wait("never scraped ready under the Operator's job", scraped_ready)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        # Works from home while assigned to headquarters: a session, checked, alerted.
        await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")
        await alerts.wait_count("e911.alert.raised", 1, within=20)

    async def healthy_and_checked() -> bool:
        """Scraped under the derived labels, ready, a session checked."""
        for expr in (
            f"up{{{sel}}} == 1",
            f"e911_ready{{{sel}}} == 1",
            f"sum(e911_checks_total{{{sel}}}) > 0",
            f"e911_sessions_active{{{sel}}} == 1",
        ):
            if not await prometheus.query(expr):
                return False
        return True

    await prometheus.wait("never scraped healthy under the Operator's job", healthy_and_checked)
    # A full rule evaluation that started after the healthy state was scraped.
    healthy_at = float((await prometheus.get("/api/v1/query?query=time()"))["result"][1])

    async def evaluated_since() -> bool:
        groups = (await prometheus.get("/api/v1/rules"))["groups"]
        return bool(groups) and all(_epoch(g["lastEvaluation"]) > healthy_at + 1 for g in groups)

    await prometheus.wait("the rules were not evaluated", evaluated_since)
    groups = (await prometheus.get("/api/v1/rules"))["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} == {name for name, _ in _rule_exprs()}
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    assert await prometheus.alerts() == []

    # Every dashboard query answers under the derived job and namespace.
    values = {
        "$__rate_interval": "30s",
        "$__interval": "30s",
        "$__range": "30s",
        "$namespace": namespace,
        "$instance": ".*",
        "$job": job,
    }
    empty: list[str] = []

    async def every_panel_has_data() -> bool:
        empty.clear()
        for title, expr in _dashboard_exprs():
            for name, value in values.items():
                expr = expr.replace(name, value)
            if not await prometheus.query(expr):
                empty.append(f"{title}: {expr}")
        return not empty

    try:
        await prometheus.wait("panels without data", every_panel_has_data, within=20)
    except AssertionError:
        raise AssertionError("panels without data:\n" + "\n".join(empty)) from None

    # Stopped, it is down under the same labels: E911DaemonDown goes pending.
    assert await running.stop() == 0

    async def daemon_down_pending() -> bool:
        return any(
            a["labels"]["alertname"] == "E911DaemonDown"
            and a["state"] == "pending"
            and a["labels"]["job"] == job
            and a["labels"].get("namespace") == namespace
            for a in await prometheus.alerts()
        )

    await prometheus.wait("E911DaemonDown did not go pending", daemon_down_pending)


def _epoch(rfc3339: str) -> float:
    """Prometheus' RFC 3339 timestamps (nanoseconds, Z) as seconds since the epoch."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    stamp = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    return stamp.timestamp() + (float(f"0.{frac}") if frac else 0.0)

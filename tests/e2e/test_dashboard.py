"""The shipped Grafana dashboard and alerting rules, checked against the real tools.

A real Prometheus (Debian's package, installed by ``make prometheus``) scrapes a
running e911d every second while it processes logins and raises an alert; every
query of every dashboard panel then goes through Prometheus' HTTP API and must both
parse and return data. A query naming a metric that does not exist, or a label the
metric does not carry, returns nothing and fails here, not on an SRE's screen.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.prometheus_server import prometheus_servers
from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    http_fetch,
    login,
    logout,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "e911d.json"
RULES_DIR = ROOT / "deploy" / "prometheus"
PROMTOOL = "/usr/bin/promtool"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's variables, replaced as Grafana would with a 1 s scrape interval: rate()
# windows of 30 s hold enough samples a few seconds after the first scrape.
VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "30s",
    "$__range": "30s",
    "$instance": ".*",
    # The job the rules select and the ServiceMonitor gives (tests/e2e/
    # test_monitoring_deploy.py derives it from the manifests); this Prometheus adds no
    # namespace label, which the dashboard's All matches.
    "$job": "e911d",
    "$namespace": ".*",
}

pytestmark = pytest.mark.e2e


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _targets() -> list[tuple[str, str]]:
    """(panel title, PromQL with the variables replaced) for every panel target."""
    out = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
            out.append((f"{panel['title']} {target['refId']}", expr))
    return out


def test_dashboard_is_grafana_10_with_the_datasource_as_a_variable():
    doc = _dashboard()
    assert doc["schemaVersion"] >= 38
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    # What the issue asks the dashboard to show, by the metric behind it.
    exprs = " ".join(expr for _, expr in _targets())
    for metric in (
        "up{",
        "e911_ready",
        "e911_sessions_active",
        "e911_checks_total",
        "e911_check_lateness_seconds_bucket",
        "e911_alerts_raised_total",
        "e911_alerts_resolved_total",
        "e911_alerts_open",
        "e911_accounts_without_locations",
        "e911_consumer_lag_messages",
        "e911_events_invalid_total",
        "e911_outbox_pending",
        "e911_outbox_oldest_age_seconds",
        "e911_database_up",
        "e911_kafka_up",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert metric in exprs, metric


def test_promtool_checks_and_unit_tests_the_rules():
    check = subprocess.run(
        [PROMTOOL, "check", "rules", "e911d-rules.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    unit = subprocess.run(
        [PROMTOOL, "test", "rules", "e911d-rules.test.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


@dataclass(frozen=True, slots=True)
class Prometheus:
    port: int
    target_port: int
    log: Path

    async def query(self, expr: str) -> dict[str, Any]:
        status, _, body = await http_fetch(self.port, f"/api/v1/query?query={quote(expr)}")
        answer: dict[str, Any] = json.loads(body)
        assert status in (200, 400, 422), (status, body[:300])
        return answer


@pytest.fixture
async def start_prometheus(tmp_path: Path) -> AsyncIterator[Callable[[int], Awaitable[Prometheus]]]:
    """Starts a real Prometheus scraping 127.0.0.1:<target_port> every second, with the
    shipped rules loaded (so the server itself accepts them too); stopped afterwards."""
    async with prometheus_servers(tmp_path) as start_server:

        async def start(target_port: int) -> Prometheus:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES_DIR / "e911d-rules.yml")],
                "scrape_configs": [
                    {
                        "job_name": "e911d",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
            server = await start_server(config)
            return Prometheus(server.port, target_port, server.log)

        yield start


async def test_every_panel_query_returns_data_from_a_real_prometheus(
    start_prometheus, broker, topics, make_settings, start_app
):
    t0 = time.monotonic()
    running = await start_app(make_settings())  # on a port of its own choosing
    assert running.app.http is not None
    prometheus = await start_prometheus(running.app.http.port)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        # u1 works from home while assigned to headquarters: an alert; u2 is where
        # it should be; u1's session then ends, which resolves the alert.
        await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")
        await p.send(topics.session_events, login("acme", "u2", "s2", "203.0.113.9"), "u2")
        await p.send(topics.session_events, b"{", "u3")  # dead-lettered: invalid_json
        await alerts.wait_count("e911.alert.raised", 1, within=20)
        await p.send(topics.session_events, logout("acme", "u1", "s1"), "u1")
        await alerts.wait_count("e911.alert.resolved", 1, within=20)

    async def state_scraped() -> bool:
        """The daemon's own state made it through: one alert raised, one resolved."""
        for expr in (
            'e911_alerts_raised_total{job="e911d"} == 1',
            'e911_alert_open_duration_seconds_count{job="e911d", reason="session_ended"} == 1',
        ):
            answer = await prometheus.query(expr)
            if answer["status"] != "success" or not answer["data"]["result"]:
                return False
        return True

    try:
        await eventually(state_scraped, within=20, step=0.25)
    except TimeoutError:
        raise AssertionError(prometheus.log.read_text()[-3000:]) from None

    targets = _targets()
    for title, expr in targets:
        answer = await prometheus.query(expr)
        assert answer["status"] == "success", f"{title}: {expr}: {answer.get('error')}"

    empty: list[str] = []

    async def all_return_data() -> bool:
        empty.clear()
        for title, expr in targets:
            answer = await prometheus.query(expr)
            if not answer["data"]["result"]:
                empty.append(f"{title}: {expr}")
        return not empty

    try:
        await eventually(all_return_data, within=20, step=0.5)
    except TimeoutError:
        raise AssertionError("panels without data:\n" + "\n".join(empty)) from None

    # The server loaded the shipped rules and evaluates them without error.
    status, _, body = await http_fetch(prometheus.port, "/api/v1/rules")
    assert status == 200
    rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert len(rules) >= 10
    assert all(r["health"] != "err" for r in rules), [r for r in rules if r["health"] == "err"]

    assert await running.stop() == 0
    elapsed = time.monotonic() - t0
    assert elapsed < 60, elapsed


def test_variables_cover_every_dollar_in_the_dashboard():
    """Every variable a target uses is one the Prometheus test knows how to replace."""
    used = {f"${name}" for name in re.findall(r"\$\{?(\w+)", DASHBOARD.read_text())}
    assert used <= set(VARIABLES) | {"$datasource"}, used

"""deploy/monitoring.yaml is the one place the job and namespace selectors are defined:
the rules file, the dashboard's defaults and the PrometheusRule are generated from it
(deploy/prometheus/prometheusrule.py). These tests fail when a committed derived file is
not what the generator writes, and when a changed source would leave any derived
selector behind, so the single source cannot quietly turn back into several."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GENERATOR = Path("prometheus") / "prometheusrule.py"
RULES = Path("prometheus") / "e911d-rules.yml"
DASHBOARD = Path("kubernetes") / "base" / "monitoring" / "e911d.json"
PROMETHEUSRULE = Path("kubernetes") / "base" / "monitoring" / "prometheusrule.yaml"
SERVICE = Path("kubernetes") / "base" / "service.yaml"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prometheusrule", DEPLOY / GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["prometheusrule"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _selectors(expr: str) -> list[str]:
    """The label matchers of every vector selector of a PromQL expression."""
    return re.findall(r"\b(?:e911|process|up)\w*\s*\{([^}]*)\}", expr)


def _exprs(groups: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["alert"], r["expr"]) for g in groups for r in g["rules"]]


def _variables(dashboard_text: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in json.loads(dashboard_text)["templating"]["list"]}


def test_the_committed_files_are_what_the_generator_writes_from_the_source() -> None:
    """The rules file, the dashboard and the PrometheusRule are exactly the generator's
    output for deploy/monitoring.yaml, and the Service gives that job."""
    gen = _generator()
    sel = gen.Selectors.load(DEPLOY / "monitoring.yaml")
    derived = gen.derived(sel)
    assert set(derived) == {DEPLOY / RULES, DEPLOY / DASHBOARD, DEPLOY / PROMETHEUSRULE}
    for path, text in derived.items():
        assert path.read_text("utf-8") == text, f"{path} is stale: run make prometheusrule"
    assert gen.service_job() == sel.job
    assert gen.stale(sel) == []
    # Every selector of every generated rule carries both matchers of the source.
    rules = yaml.safe_load((DEPLOY / RULES).read_text("utf-8"))["groups"]
    for name, expr in _exprs(rules):
        assert _selectors(expr), name
        for matchers in _selectors(expr):
            assert matchers.startswith(sel.promql), f"{name}: {matchers}"


def test_changing_the_source_changes_every_derived_selector(tmp_path: Path) -> None:
    """In a copy of deploy/, a new job and namespace in monitoring.yaml reach every rule
    selector, the dashboard's defaults and the PrometheusRule once the generator runs,
    and ``--check`` fails until then and while the Service label still gives the old
    job."""
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy, symlinks=True)
    source = deploy / "monitoring.yaml"
    text = source.read_text("utf-8")
    text = text.replace("\njob: e911d\n", "\njob: e911-other\n")
    text = text.replace('\nnamespace: ".*"\n', '\nnamespace: "prod-.*"\n')
    assert text != source.read_text("utf-8")
    source.write_text(text, "utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(deploy / GENERATOR), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    before = run("--check")
    assert before.returncode == 1
    for path in (RULES, DASHBOARD, PROMETHEUSRULE, SERVICE):
        assert str(Path("deploy") / path) in before.stderr, (path, before.stderr)

    assert run().returncode == 0
    wanted = 'job="e911-other", namespace=~"prod-.*"'
    rules_text = (deploy / RULES).read_text("utf-8")
    assert 'job="e911d"' not in rules_text
    rules = yaml.safe_load(rules_text)["groups"]
    rule = yaml.safe_load((deploy / PROMETHEUSRULE).read_text("utf-8"))
    assert rule["spec"]["groups"] == rules
    for name, expr in _exprs(rules):
        assert _selectors(expr), name
        for matchers in _selectors(expr):
            assert matchers.startswith(wanted), f"{name}: {matchers}"
    variables = _variables((deploy / DASHBOARD).read_text("utf-8"))
    assert variables["job"]["current"]["value"] == "e911-other"
    assert variables["job"]["query"] == "e911-other"
    assert variables["namespace"]["allValue"] == "prod-.*"
    assert 'namespace=~"prod-.*"' in variables["namespace"]["query"]["query"]
    # The dashboard link still resolves to the generated file.
    assert (deploy / "grafana" / "e911d.json").read_text("utf-8") == (deploy / DASHBOARD).read_text(
        "utf-8"
    )

    # Only the Service is left: it selects the pods too, so it is checked, not rewritten.
    after = run("--check")
    assert after.returncode == 1
    assert "service.yaml" in after.stderr and "stale" not in after.stderr, after.stderr
    service = deploy / SERVICE
    service.write_text(
        service.read_text("utf-8").replace(
            "labels:\n    app.kubernetes.io/name: e911d",
            "labels:\n    app.kubernetes.io/name: e911-other",
        ),
        "utf-8",
    )
    fixed = run("--check")
    assert fixed.returncode == 0, fixed.stderr


@pytest.mark.parametrize("job", ['e911"d', "", "a\\b"])
def test_a_job_that_would_break_out_of_promql_is_refused(tmp_path: Path, job: str) -> None:
    """A value is pasted into PromQL strings: a quote or backslash would change the
    expressions instead of the selector, so the generator refuses it."""
    source = tmp_path / "monitoring.yaml"
    source.write_text(yaml.safe_dump({"job": job, "namespace": ".*"}), "utf-8")
    with pytest.raises(ValueError, match="job must be"):
        _generator().Selectors.load(source)

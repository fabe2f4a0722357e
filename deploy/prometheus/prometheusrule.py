"""``make prometheusrule``: write the kustomize base's PrometheusRule from e911d-rules.yml.

The rules file stays the one source (promtool checks and unit-tests it, a plain
Prometheus loads it); the Prometheus Operator wants the same groups inside a
PrometheusRule object, and kustomize cannot embed a YAML file as structure, so the
object is generated and committed. ``--check`` exits 1 when the committed object is not
what this would write (tests/e2e/test_kubernetes.py also compares the rendered groups).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "e911d-rules.yml"
TARGET = ROOT / "deploy" / "kubernetes" / "base" / "monitoring" / "prometheusrule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/e911d-rules.yml by `make prometheusrule`: edit that\n"
    "# file, not this one. Your Prometheus' ruleSelector may need a label here (for\n"
    "# kube-prometheus-stack, release: <its release name>): add it in your overlay.\n"
)


def prometheusrule() -> str:
    """The PrometheusRule object, as YAML text, holding the rules file's groups."""
    groups = yaml.safe_load(RULES.read_text("utf-8"))["groups"]
    obj: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "e911d",
            "labels": {
                "app.kubernetes.io/name": "e911d",
                "app.kubernetes.io/component": "monitoring",
            },
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(obj, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = prometheusrule()
    if argv[1:] == ["--check"]:
        if TARGET.read_text("utf-8") != text:
            print(f"{TARGET} is stale: run make prometheusrule", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

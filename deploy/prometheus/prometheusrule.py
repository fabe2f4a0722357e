"""``make prometheusrule``: write every monitoring file derived from deploy/monitoring.yaml.

deploy/monitoring.yaml is the one place that says which job and namespaces e911d's
monitoring selects (mixin style): a job named in several files drifts, and a rule
selecting another job than the one scraped fires E911DaemonDown forever over a healthy
daemon. From it and the templates this writes:

- deploy/prometheus/e911d-rules.yml, from e911d-rules.tmpl.yml, every ``{__SELECTORS__``
  becoming ``{job="<job>", namespace=~"<namespace>"``. The generated file is committed:
  promtool checks and unit-tests it and a plain Prometheus loads it.
- the dashboard (deploy/kubernetes/base/monitoring/e911d.json): its ``job`` variable's
  default and its ``namespace`` variable's list and All. The rest of the dashboard is
  its own template; only those defaults are rewritten.
- the kustomize base's PrometheusRule, holding the generated rules' groups: the
  Prometheus Operator wants them inside an object and kustomize cannot embed a YAML file
  as structure.

The Service label the ServiceMonitor's ``jobLabel`` names is what the Operator makes the
job; it also selects the pods, so it is not rewritten but checked. ``--check`` exits 1
when a committed derived file is not what this would write or that label is not the job;
``--source PATH`` reads another selectors file (the tests change the job in a copy).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "deploy" / "monitoring.yaml"
TEMPLATE = ROOT / "deploy" / "prometheus" / "e911d-rules.tmpl.yml"
RULES = ROOT / "deploy" / "prometheus" / "e911d-rules.yml"
BASE = ROOT / "deploy" / "kubernetes" / "base"
DASHBOARD = BASE / "monitoring" / "e911d.json"
TARGET = BASE / "monitoring" / "prometheusrule.yaml"
SERVICE = BASE / "service.yaml"
SERVICE_MONITOR = BASE / "servicemonitor.yaml"
PLACEHOLDER = "{__SELECTORS__"
RULES_HEADER = (
    "# Generated from e911d-rules.tmpl.yml and ../monitoring.yaml by `make prometheusrule`:\n"
    "# edit the rules in the template and the job or namespace selector in monitoring.yaml,\n"
    "# not this file. e911d-rules.test.yml unit-tests it (make rules-check). Scraping\n"
    "# without the Prometheus Operator: name the scrape job as monitoring.yaml's job.\n"
)
HEADER = (
    "# Generated from deploy/prometheus/e911d-rules.yml by `make prometheusrule`: edit\n"
    "# deploy/prometheus/e911d-rules.tmpl.yml and deploy/monitoring.yaml, not this file.\n"
    "# Your Prometheus' ruleSelector may need a label here (for kube-prometheus-stack,\n"
    "# release: <its release name>): add it in your overlay.\n"
)
_LABEL_VALUE = re.compile(r"[^\"\\\n]+")


@dataclass(frozen=True, slots=True)
class Selectors:
    job: str
    namespace: str

    @classmethod
    def load(cls, path: Path) -> Selectors:
        """Read and validate the source: a value with a quote, backslash or newline
        would break out of the PromQL string it is pasted into."""
        doc = yaml.safe_load(path.read_text("utf-8"))
        job, namespace = doc["job"], doc["namespace"]
        for name, value in (("job", job), ("namespace", namespace)):
            if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
                raise ValueError(f"{path}: {name} must be a non-empty string without quotes")
        return cls(job, namespace)

    @property
    def promql(self) -> str:
        return f'job="{self.job}", namespace=~"{self.namespace}"'


def rules(sel: Selectors) -> str:
    """The rules file: the template below its header comment, selectors filled in."""
    template = TEMPLATE.read_text("utf-8")
    body = template[template.index("\ngroups:") + 1 :]
    if PLACEHOLDER not in body:
        raise ValueError(f"{TEMPLATE} has no {PLACEHOLDER}}}: the selectors would not be applied")
    return RULES_HEADER + body.replace(PLACEHOLDER, "{" + sel.promql)


def dashboard(sel: Selectors, current: str) -> str:
    """The dashboard text ``current`` with the job and namespace defaults of ``sel``."""
    doc = json.loads(current)
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    job = variables["job"]
    job["query"] = sel.job
    job["current"] = {"selected": True, "text": sel.job, "value": sel.job}
    job["options"] = [{"selected": True, "text": sel.job, "value": sel.job}]
    namespace = variables["namespace"]
    query = f'label_values(e911_build_info{{job="$job", namespace=~"{sel.namespace}"}}, namespace)'
    namespace["definition"] = query
    namespace["query"]["query"] = query
    namespace["allValue"] = sel.namespace
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def prometheusrule(rules_text: str) -> str:
    """The PrometheusRule object, as YAML text, holding the rules file's groups."""
    groups = yaml.safe_load(rules_text)["groups"]
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


def derived(sel: Selectors) -> dict[Path, str]:
    """Every derived file's path and the text this generator writes there."""
    rules_text = rules(sel)
    return {
        RULES: rules_text,
        DASHBOARD: dashboard(sel, DASHBOARD.read_text("utf-8")),
        TARGET: prometheusrule(rules_text),
    }


def service_job() -> str:
    """The job the Operator gives the Service's targets: the value of the Service label
    the ServiceMonitor's jobLabel names."""
    monitor = yaml.safe_load(SERVICE_MONITOR.read_text("utf-8"))
    service = yaml.safe_load(SERVICE.read_text("utf-8"))
    return str(service["metadata"]["labels"][monitor["spec"]["jobLabel"]])


def stale(sel: Selectors) -> list[str]:
    """What the committed files get wrong against ``sel``; empty when all agree."""
    problems = [
        f"{path.relative_to(ROOT)} is stale: run make prometheusrule"
        for path, text in derived(sel).items()
        if path.read_text("utf-8") != text
    ]
    if (job := service_job()) != sel.job:
        problems.append(
            f"{SERVICE.relative_to(ROOT)} gives job {job!r} (the label the ServiceMonitor's "
            f"jobLabel names), deploy/monitoring.yaml says {sel.job!r}: change one"
        )
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the selectors file")
    args = parser.parse_args(argv[1:])
    sel = Selectors.load(args.source)
    if args.check:
        problems = stale(sel)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path, text in derived(sel).items():
        path.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

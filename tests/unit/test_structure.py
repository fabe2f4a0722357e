"""The shape the architecture promises, checked on the source so it cannot drift.

docs/architecture.md says who may import whom; these tests read every module's
imports (with ``ast``, importing nothing) and fail naming the module and the line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("daemon", "consumers", "schedulers", "config")
MAX_MODULE_LINES = 400
MAX_ROOT_LINES = 200


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield name.removesuffix(".__init__"), path


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, as e911d-relative names (``daemon.db``)."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.removeprefix("e911d.")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.removeprefix("e911d.")


def violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for name, path in modules():
        if name != prefix and not name.startswith(prefix + "."):
            continue
        for line, imported in imports(path):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                found.append(f"{name}:{line} imports {imported}")
    return found


def test_the_scan_sees_the_packages() -> None:
    names = {name for name, _ in modules()}
    assert {"daemon.app", "daemon.services.relay", "consumers.loop", "config.settings"} <= names


def test_no_product_module_is_over_400_lines() -> None:
    long = {
        name: n
        for name, path in modules()
        if (n := len(path.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_composition_root_stays_small() -> None:
    lines = len((ROOT / "daemon" / "app.py").read_text("utf-8").splitlines())
    assert lines <= MAX_ROOT_LINES


@pytest.mark.parametrize("adapter", ["consumers", "schedulers", "config"])
def test_adapters_never_import_the_daemon(adapter: str) -> None:
    assert violations(adapter, ("daemon",)) == []


def test_no_service_imports_the_root() -> None:
    assert violations("daemon.services", ("daemon.app", "daemon.cli", "daemon.dev")) == []


@pytest.mark.parametrize(
    ("service", "may_call"),
    [
        ("daemon.services.relay", ()),
        ("daemon.services.checks", ("relay",)),
        ("daemon.services.reevaluation", ("checks",)),
        ("daemon.services.ingest", ("relay",)),
        ("daemon.services.housekeeping", ("relay",)),
    ],
)
def test_calls_between_services_go_one_way(service: str, may_call: tuple[str, ...]) -> None:
    others = ("relay", "checks", "reevaluation", "ingest", "housekeeping", "bundle")
    own = service.rsplit(".", 1)[1]
    forbidden = tuple(f"daemon.services.{o}" for o in others if o != own and o not in may_call)
    assert violations(service, forbidden) == []


@pytest.mark.parametrize(
    "pure", ["daemon.evaluation", "daemon.model", "consumers.ip", "daemon.report.figures"]
)
def test_the_pure_core_imports_no_io_library(pure: str) -> None:
    io = ("asyncpg", "aiokafka", "apscheduler", "structlog", "prometheus_client", "daemon.db")
    assert violations(pure, io) == []


def test_only_the_db_module_names_driver_exceptions() -> None:
    found = []
    for name, path in modules():
        if name == "daemon.db":
            continue
        text = path.read_text("utf-8")
        for needle in ("asyncpg.PostgresError", "asyncpg.InterfaceError", "asyncpg.exceptions"):
            if needle in text:
                found.append(f"{name}: {needle}")
    assert found == []


def test_the_architecture_document_names_every_service_and_component() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    services = sorted(
        p.name for p in (ROOT / "daemon" / "services").glob("*.py") if p.stem != "__init__"
    )
    missing = [f"services/{name}" for name in services if f"services/{name}" not in doc]
    missing += [
        f for f in ("daemon/app.py", "daemon/supervisor.py", "daemon/runtime.py") if f not in doc
    ]
    assert missing == []

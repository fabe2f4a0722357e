"""The layers docs/architecture.md describes, checked on the source by folder.

``daemon/`` holds one folder per layer, and imports point down only:

    commands → runtime → services → store, kafka → core

``consumers``, ``schedulers`` and ``config`` are adapters the layers use; they import
nothing of ``daemon`` but its pure ``core``. These tests read every module's imports
(with ``ast``, importing nothing) and fail naming the module and the line. Each rule
is also broken once on purpose in a tree written for the test, so a rule that can no
longer fail is noticed.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("daemon", "consumers", "schedulers", "config")
LAYERS = ("core", "store", "kafka", "services", "runtime", "commands")
MAX_MODULE_LINES = 400
MAX_ROOT_LINES = 200
DRIVER_ERRORS = ("asyncpg.PostgresError", "asyncpg.InterfaceError", "asyncpg.exceptions")
SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "load_queries")
# The one module allowed to name driver exceptions: the error boundary.
BOUNDARY = "daemon.store.db"
ENTRY_POINT = "daemon.commands.cli"


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # e911d-relative, dotted: "daemon.store.db"
    path: Path

    @property
    def layer(self) -> str | None:
        parts = self.name.split(".")
        if parts[0] == "daemon" and len(parts) > 1 and parts[1] in LAYERS:
            return parts[1]
        return None


def modules(root: Path = ROOT) -> Iterator[Module]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            yield Module(name.removesuffix(".__init__"), path)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, absolute, e911d-relative where it is ours."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.removeprefix("e911d.")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.removeprefix("e911d.")


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def forbidden_imports(root: Path, importer: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports of ``forbidden`` prefixes by modules under the ``importer`` prefix."""
    found = []
    for m in modules(root):
        if not under(m.name, importer):
            continue
        for line, imported in imports(m.path):
            if any(under(imported, f) for f in forbidden):
                found.append(f"{m.name}:{line} imports {imported}")
    return found


def layer_violations(root: Path = ROOT) -> list[str]:
    """Every import that points up, or across where the architecture says no."""
    below = {
        "store": ("daemon.services", "daemon.runtime", "daemon.commands"),
        "kafka": ("daemon.services", "daemon.runtime", "daemon.commands"),
        "services": ("daemon.runtime", "daemon.commands"),
        "runtime": ("daemon.commands",),
    }
    found = []
    for layer, forbidden in below.items():
        found += forbidden_imports(root, f"daemon.{layer}", forbidden)
    for adapter in ("consumers", "schedulers", "config"):
        found += [
            v
            for v in forbidden_imports(root, adapter, ("daemon",))
            if not v.split(" imports ")[1].startswith("daemon.core")
        ]
    return found


def core_violations(root: Path = ROOT) -> list[str]:
    """The core imports the standard library, msgspec and itself, nothing else."""
    allowed_third_party = ("msgspec",)
    found = []
    for m in modules(root):
        if m.layer != "core":
            continue
        for line, imported in imports(m.path):
            top = imported.split(".")[0]
            if under(imported, "daemon.core") or top == "__future__":
                continue
            if top in sys.stdlib_module_names or top in allowed_third_party:
                continue
            found.append(f"{m.name}:{line} imports {imported}")
    return found


def command_importers(root: Path = ROOT) -> list[str]:
    """Nothing imports the commands but the commands themselves (the CLI entry point
    is one of them)."""
    found = []
    for m in modules(root):
        if m.layer == "commands":
            continue
        for line, imported in imports(m.path):
            if under(imported, "daemon.commands"):
                found.append(f"{m.name}:{line} imports {imported}")
    return found


def flat_modules(root: Path = ROOT) -> list[str]:
    """Product modules directly in daemon/: each belongs to a layer's folder."""
    return sorted(
        p.name
        for p in (root / "daemon").glob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )


def unknown_folders(root: Path = ROOT) -> list[str]:
    return sorted(
        p.name
        for p in (root / "daemon").iterdir()
        if p.is_dir() and p.name not in LAYERS and p.name != "__pycache__"
    )


def services_with_sql(root: Path = ROOT) -> list[str]:
    """Services call stores; SQL text and named queries live in daemon/store."""
    found = []
    for m in modules(root):
        if m.layer != "services":
            continue
        for node in ast.walk(ast.parse(m.path.read_text("utf-8"))):
            text = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.Name):
                text = node.id
            if text is not None and any(w in text for w in SQL_WORDS):
                found.append(f"{m.name}:{node.lineno} {text[:40]!r}")
    return found


def driver_error_names(root: Path = ROOT) -> list[str]:
    found = []
    for m in modules(root):
        if m.name == BOUNDARY:
            continue
        text = m.path.read_text("utf-8")
        found += [f"{m.name}: {needle}" for needle in DRIVER_ERRORS if needle in text]
    return found


def test_the_scan_sees_every_layer() -> None:
    layers = {m.layer for m in modules()}
    assert layers == set(LAYERS) | {None}
    names = {m.name for m in modules()}
    assert {ENTRY_POINT, BOUNDARY, "consumers.loop", "schedulers.schedule"} <= names


def test_imports_point_down_the_layers() -> None:
    assert layer_violations() == []


def test_the_core_imports_only_the_standard_library_and_msgspec() -> None:
    assert core_violations() == []


def test_nothing_imports_the_commands_but_the_cli() -> None:
    assert command_importers() == []


def test_daemon_holds_layer_folders_only() -> None:
    assert flat_modules() == []
    assert unknown_folders() == []


def test_no_service_holds_sql() -> None:
    assert services_with_sql() == []


def test_only_the_error_boundary_names_driver_exceptions() -> None:
    assert driver_error_names() == []


def test_no_product_module_is_over_400_lines() -> None:
    long = {
        m.name: n
        for m in modules()
        if (n := len(m.path.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_composition_root_stays_small() -> None:
    lines = len((ROOT / "daemon" / "runtime" / "app.py").read_text("utf-8").splitlines())
    assert lines <= MAX_ROOT_LINES


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
    others = ("relay", "checks", "reevaluation", "ingest", "housekeeping")
    own = service.rsplit(".", 1)[1]
    forbidden = tuple(f"daemon.services.{o}" for o in others if o != own and o not in may_call)
    assert forbidden_imports(ROOT, service, forbidden) == []


def test_module_file_names_are_unique_but_for_parallel_command_parts() -> None:
    """One name per thing: a file name used twice is allowed only for the parts every
    command package has (its ``command``, its ``render``), which say so."""
    parallel = {"__init__.py", "command.py", "render.py"}
    seen: dict[str, list[str]] = {}
    for m in modules():
        seen.setdefault(m.path.name, []).append(m.name)
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert {n for n in twice if n not in parallel} == set()
    for name in ("command.py", "render.py"):
        assert all(under(w, "daemon.commands") for w in twice.get(name, []))


def test_the_architecture_document_names_every_layer_and_service() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    services = sorted(
        p.name for p in (ROOT / "daemon" / "services").glob("*.py") if p.stem != "__init__"
    )
    missing = [f"services/{name}" for name in services if f"services/{name}" not in doc]
    missing += [f"daemon/{layer}/" for layer in LAYERS if f"daemon/{layer}/" not in doc]
    assert missing == []


# -- each rule broken once on purpose -------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
    for layer in LAYERS:
        (tmp_path / "daemon" / layer).mkdir(parents=True, exist_ok=True)
        (tmp_path / "daemon" / layer / "__init__.py").write_text("")
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "text", "check"),
    [
        ("daemon/core/x.py", "import structlog\n", core_violations),
        ("daemon/core/x.py", "from e911d.daemon.store.db import SQL\n", core_violations),
        ("daemon/store/x.py", "from e911d.daemon.services.deps import Runtime\n", layer_violations),
        ("daemon/store/x.py", "from e911d.daemon.runtime.app import App\n", layer_violations),
        ("daemon/kafka/x.py", "import e911d.daemon.services.relay\n", layer_violations),
        ("daemon/services/x.py", "from e911d.daemon.runtime import logs\n", layer_violations),
        ("daemon/runtime/x.py", "from e911d.daemon.commands.cli import main\n", layer_violations),
        ("consumers/x.py", "from e911d.daemon.store.db import SQL\n", layer_violations),
        ("schedulers/x.py", "from e911d.daemon.services.deps import Runtime\n", layer_violations),
        ("daemon/services/x.py", "from e911d.daemon.commands import dev\n", command_importers),
        ("daemon/x.py", '"""A flat module."""\n', flat_modules),
        ("daemon/misc/x.py", '"""A folder no layer names."""\n', unknown_folders),
        ("daemon/services/x.py", 'Q = "SELECT 1"\n', services_with_sql),
        ("daemon/services/x.py", 'SQL = load_queries("a.sql")\n', services_with_sql),
        ("daemon/services/x.py", "E = asyncpg.PostgresError\n", driver_error_names),
    ],
)
def test_each_rule_fails_when_broken(rel: str, text: str, check: object, tmp_path: Path) -> None:
    assert callable(check)
    assert check(_tree(tmp_path, {})) == []
    assert check(_tree(tmp_path, {rel: text})) != []


def test_allowed_imports_are_not_flagged(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "daemon/core/x.py": "import msgspec\nimport datetime\nfrom e911d.daemon.core import y",
            "daemon/store/x.py": "from e911d.daemon.core.model import User\n",
            "daemon/services/x.py": "from e911d.daemon.store.db import retrying\n",
            "daemon/runtime/x.py": "from e911d.daemon.services.deps import Runtime\n",
            "daemon/commands/x.py": "from e911d.daemon.runtime.app import App\n",
            "consumers/x.py": "from e911d.daemon.core.events import SessionEvent\n",
        },
    )
    assert layer_violations(root) == []
    assert core_violations(root) == []
    assert command_importers(root) == []

"""Every named query the code asks for exists, and every one that exists is asked for.

A query is looked up by name at run time (``SQL["upsert_session"]``), so a typo or a
query renamed in its ``.sql`` file is a ``KeyError`` on a path the tests may not take,
and a query the code stopped using lingers as dead SQL that still has to be kept in
step with the schema. This reads the code with ``ast`` (no import, no database) and
follows each ``NAME = load_queries("file.sql")`` of a module, also where another module
imports ``NAME``, to every ``NAME[...]`` lookup. A key must be a string literal, or a
name this test can follow to string literals (a loop over a literal tuple, or a
parameter of a function called with literals): a lookup it cannot follow fails, so a
query can never be used without this test seeing it.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from e911d.daemon.store.db import load_queries

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "daemon" / "store" / "sql"
# Folder -> the import name of its modules (the packages install under e911d.).
SOURCES = {
    "daemon": "e911d.daemon",
    "consumers": "e911d.consumers",
    "schedulers": "e911d.schedulers",
    "config": "e911d.config",
    "benchmarks": "benchmarks",
}


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # dotted import name
    path: str  # relative to the repository, for messages
    tree: ast.Module


@dataclass(slots=True)
class Scan:
    loads: list[tuple[str, str]] = field(default_factory=list)  # (where, file)
    uses: list[tuple[str, str, str]] = field(default_factory=list)  # (where, file, query)
    problems: list[str] = field(default_factory=list)  # what this test cannot follow


def _modules() -> list[Module]:
    out = []
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            out.append(Module(name, str(path.relative_to(ROOT)), tree))
    return out


def _is_load_queries(node: ast.AST) -> TypeGuard[ast.Call]:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "load_queries") or (
        isinstance(func, ast.Attribute) and func.attr == "load_queries"
    )


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literals(nodes: Iterable[ast.AST | None]) -> list[str] | None:
    """The strings if every node is a string literal, else None."""
    values = [_literal(node) for node in nodes]
    return None if None in values else [v for v in values if v is not None]


def _assignments(module: Module) -> dict[str, ast.Call]:
    """The module's top-level ``NAME = load_queries(...)``: name -> call."""
    out: dict[str, ast.Call] = {}
    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and _is_load_queries(value):
            out[target.id] = value
    return out


def _file(call: ast.Call) -> str | None:
    return _literal(call.args[0]) if len(call.args) == 1 and not call.keywords else None


def _imported(module: Module, loaded: dict[str, dict[str, str]]) -> dict[str, str]:
    """Query variables imported from another module: local name -> file."""
    out: dict[str, str] = {}
    for stmt in ast.walk(module.tree):
        if not isinstance(stmt, ast.ImportFrom):
            continue
        source = stmt.module or ""
        if stmt.level:  # relative: from the module's own package upwards
            package = module.name.split(".")
            is_package = module.path.endswith("__init__.py")
            base = package[: len(package) - stmt.level + is_package]
            source = ".".join([*base, source] if source else base)
        for alias in stmt.names:
            if alias.name in loaded.get(source, {}):
                out[alias.asname or alias.name] = loaded[source][alias.name]
    return out


def _iterated(node: ast.expr) -> list[str] | None:
    """What a loop over a literal tuple or list of strings binds, else None."""
    return _literals(node.elts) if isinstance(node, ast.Tuple | ast.List) else None


def _argument(call: ast.Call, at: int, name: str) -> ast.AST | None:
    """What a call passes to parameter ``name`` (position ``at``)."""
    if at < len(call.args):
        return call.args[at]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _keys(key: ast.expr, stack: list[ast.AST], tree: ast.Module) -> list[str] | None:
    """The string literals a lookup key can be, or None if this test cannot tell."""
    if (text := _literal(key)) is not None:
        return [text]
    if not isinstance(key, ast.Name):
        return None
    for node in reversed(stack):  # the innermost binding of the name
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            if node.target.id == key.id:
                return _iterated(node.iter)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            for gen in node.generators:
                if isinstance(gen.target, ast.Name) and gen.target.id == key.id:
                    return _iterated(gen.iter)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
            if key.id not in params:
                return None
            at = params.index(key.id)
            calls = [
                c
                for c in ast.walk(tree)
                if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Name)
                and c.func.id == node.name
            ]
            return _literals(_argument(c, at, key.id) for c in calls) if calls else None
    return None


def _follow(module: Module, names: dict[str, str], scan: Scan) -> None:
    """Record the module's lookups through its query variables (``names``: -> file)."""

    def visit(node: ast.AST, stack: list[ast.AST]) -> None:
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            if (filename := names.get(node.value.id)) is not None:
                where = f"{module.path}:{node.lineno}"
                keys = _keys(node.slice, stack, module.tree)
                if keys is None:
                    scan.problems.append(
                        f"{where}: {ast.unparse(node)}: a key this test cannot follow to "
                        "string literals"
                    )
                scan.uses.extend((where, filename, key) for key in keys or [])
                visit(node.slice, [*stack, node])
                return
        if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load):
            scan.problems.append(
                f"{module.path}:{node.lineno}: {node.id} used other than as {node.id}[...]: "
                "this test cannot follow it to its lookups"
            )
        for child in ast.iter_child_nodes(node):
            visit(child, [*stack, node])

    visit(module.tree, [])


@functools.cache
def scan() -> Scan:
    """Every query file loaded, query looked up, and lookup this test cannot follow."""
    modules = _modules()
    assigned = {m.name: _assignments(m) for m in modules}
    loaded = {
        module: {name: f for name, call in calls.items() if (f := _file(call)) is not None}
        for module, calls in assigned.items()
    }
    changed = True
    while changed:  # also through re-exports: from a module that imported the variable
        changed = False
        for m in modules:
            more = _imported(m, loaded)
            if more.keys() - loaded[m.name].keys():
                loaded[m.name] = {**more, **loaded[m.name]}
                changed = True
    result = Scan()
    for module in modules:
        followed = {id(call) for call in assigned[module.name].values()}
        for call in ast.walk(module.tree):
            if not _is_load_queries(call):
                continue
            where = f"{module.path}:{call.lineno}"
            filename = _file(call)
            if filename is None or id(call) not in followed:
                result.problems.append(
                    f'{where}: {ast.unparse(call)} is not NAME = load_queries("file.sql") '
                    "at module level: this test cannot follow its lookups"
                )
            if filename is not None:
                result.loads.append((where, filename))
        if loaded[module.name]:
            _follow(module, loaded[module.name], result)
    return result


def defined() -> dict[str, set[str]]:
    """Each query file's queries, read by the daemon's own loader."""
    return {p.name: set(load_queries(p.name)) for p in sorted(SQL_DIR.glob("*.sql"))}


def test_the_scan_sees_the_code_and_the_queries() -> None:
    """Guards the guard: finding nothing on either side, every test below would pass."""
    assert scan().uses, f"no query lookups found under {', '.join(SOURCES)}"
    assert defined(), f"no query files in {SQL_DIR}"


def test_every_query_file_exists() -> None:
    missing = [f"{where}: {f}" for where, f in scan().loads if not (SQL_DIR / f).is_file()]
    assert not missing, "load_queries of a file not in daemon/store/sql:\n" + "\n".join(missing)


def test_every_lookup_can_be_followed() -> None:
    problems = scan().problems
    assert not problems, "\n".join(problems)


def test_every_query_looked_up_exists() -> None:
    queries = defined()
    unknown = [
        f"{where}: {query!r} is not a query of {filename}"
        for where, filename, query in scan().uses
        if query not in queries.get(filename, set())
    ]
    assert not unknown, "\n".join(unknown)


def test_every_query_is_looked_up() -> None:
    used = {(filename, query) for _, filename, query in scan().uses}
    unused = [
        f"{filename}: {query}"
        for filename, queries in defined().items()
        for query in sorted(queries)
        if (filename, query) not in used
    ]
    assert not unused, "queries no code looks up:\n" + "\n".join(unused)

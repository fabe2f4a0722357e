"""Where a configuration value came from, so that an error can say so.

An operator fixing a bad value needs to know whether to edit the TOML file or an
environment variable, and what the value was: each error names its source (file and
key, or variable) and shows the value as written, unless the field is a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, SecretStr, ValidationError

ENV_PREFIX = "E911_"


def _env_paths(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Each ``E911_`` variable by the settings path it sets (``("http", "port")``)."""
    return {
        tuple(name[len(ENV_PREFIX) :].lower().split("__")): name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
    }


def _field_at(root: type[BaseModel], path: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
    """The longest prefix of an error location that names a field, and that field."""
    model: Any = root
    found: tuple[tuple[str, ...], Any] = ((), None)
    for i, part in enumerate(path):
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict) or part not in fields:
            break
        found = (path[: i + 1], fields[part])
        model = fields[part].annotation
    return found


def _is_secret(field: Any) -> bool:
    annotation = getattr(field, "annotation", None)
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _in_mapping(values: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = values
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _keys_under(values: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """The dotted keys of every value set at or below ``path``."""
    node: Any = values
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return []
        node = node[part]
    if not isinstance(node, Mapping):
        return [".".join(path)]
    return [key for k in node for key in _keys_under(values, (*path, str(k)))]


def unknown_env_keys(environ: Mapping[str, str], root: type[BaseModel]) -> list[str]:
    """Environment variables with our prefix that name no setting.

    pydantic-settings ignores them, which would let ``E911_CHEKS__...`` pass silently.
    """
    unknown: list[str] = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        path = upper[len(ENV_PREFIX) :].lower().split("__")
        model = root
        for i, part in enumerate(path):
            field = model.model_fields.get(part)
            if field is None:
                unknown.append(name)
                break
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                if i == len(path) - 1:
                    break  # a whole section as JSON
                model = annotation
            elif i != len(path) - 1:
                unknown.append(name)
                break
    return sorted(unknown)


_MISSING = object()


class Sources:
    """Where each value came from, to name it in an error: env wins, then file, then
    the caller's overrides (as in ``Settings.settings_customise_sources``)."""

    def __init__(
        self,
        environ: Mapping[str, str],
        file: Path | None,
        file_values: Mapping[str, Any],
        overrides: Mapping[str, Any],
    ) -> None:
        self.environ, self.env = environ, _env_paths(environ)
        self.file, self.file_values, self.overrides = file, file_values, overrides

    def of(self, path: tuple[str, ...]) -> str:
        return self.find(path)[0]

    def find(self, path: tuple[str, ...]) -> tuple[str, object]:
        """Where the value at ``path`` came from, and the value as written there."""
        key = ".".join(path)
        for i in range(len(path), 0, -1):  # the variable itself, or its section as JSON
            if path[:i] in self.env:
                name = self.env[path[:i]]
                if i == len(path):
                    return f"env {name} ({key})", self.environ[name]
                return f"env {name}: key {key}", _MISSING
        if _in_mapping(self.overrides, path):
            return f"override {key}", _MISSING
        if self.file is not None and _in_mapping(self.file_values, path):
            return f"file {self.file}: key {key}", _MISSING
        if path and not path[-1].endswith("_file"):
            # A secret read from the file its x_file form names.
            via, _ = self.find((*path[:-1], f"{path[-1]}_file"))
            if not via.startswith("key "):
                return f"key {key}, read from the file named by {via}", _MISSING
        return f"key {key}", _MISSING

    def under(self, path: tuple[str, ...]) -> list[str]:
        """Every source that set something inside a section (for a cross-field check)."""
        names = [f"env {n}" for p, n in sorted(self.env.items()) if p[: len(path)] == path]
        if self.file is not None:
            names += [f"file {self.file}: key {k}" for k in _keys_under(self.file_values, path)]
        return names


def format_validation_error(error: ValidationError, sources: Sources, root: type[BaseModel]) -> str:
    lines = ["invalid configuration:"]
    for item in error.errors():
        loc = tuple(str(p) for p in item["loc"])
        path, field = _field_at(root, loc)
        if item["type"] == "extra_forbidden":
            lines.append(f"  {sources.of(loc)}: unknown key")
            continue
        if field is None:
            lines.append(f"  {sources.of(loc)}: {item['msg']}")
            continue
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            # A check across a section's fields: name everything that set them.
            set_by = "; ".join(sources.under(path)) or "defaults"
            lines.append(f"  {'.'.join(path)}: {item['msg']} (set by {set_by})")
            continue
        where, raw = sources.find(path)
        value = item.get("input") if raw is _MISSING else raw  # as the operator wrote it
        shown = "a secret, not shown" if _is_secret(field) else repr(value)
        lines.append(f"  {where}: {item['msg']} (got {shown})")
    return "\n".join(lines)

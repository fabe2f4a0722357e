"""Secret settings: read from a mounted file (their ``_file`` form), masked when shown.

Orchestrators hand secrets over as files (Docker and Kubernetes secrets, Vault
agents), and a secret in an environment variable leaks into ``/proc``, crash dumps and
child processes. So every secret setting ``x`` has a sibling ``x_file`` (env
``E911_…__X_FILE``) naming a file that holds the value (docs/spec.md#running-e911d).
Giving both is refused, because which one wins would be a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, SecretStr

from e911d.config.dsn import MASK, mask_dsn

FILE_SUFFIX = "_file"


def secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that hold a secret (typed ``SecretStr``, maybe optional)."""
    return tuple(
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    )


def read_secret(path: Path) -> str:
    """The file's text without its trailing newline (``echo`` and most secret stores
    end files with one; a password never does)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read {path}: {reason}") from exc
    value = text.rstrip("\r\n")
    if not value:
        raise ValueError(f"{path} is empty")
    return value


def take_secret_files(model: type[BaseModel], data: Any) -> Any:
    """Section input with each ``x_file`` read into ``x`` (the path stays, to be shown).

    A file that cannot be read is left to the ``x_file`` field's own validation, which
    reports it at that key, so the error names the variable or file key that set it.
    """
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name in secret_fields(model):
        path = out.get(name + FILE_SUFFIX)
        if path is None:
            continue
        if out.get(name) is not None:
            raise ValueError(f"{name} and {name}{FILE_SUFFIX} are both set: give one of them")
        try:
            out[name] = read_secret(Path(path))
        except (ValueError, TypeError):
            continue
    return out


def masked(model: BaseModel) -> dict[str, Any]:
    """The model as plain data, every secret replaced by ``***`` (a DSN keeps all but its
    passwords: host, database and TLS options are worth seeing)."""
    data: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            data[name] = masked(value)
        elif isinstance(value, SecretStr):
            data[name] = mask_dsn(value.get_secret_value()) if name == "dsn" else MASK
        else:
            data[name] = model.model_dump(mode="json", include={name})[name]
    return data

"""Every secret setting has a ``_FILE`` form read from a mounted file
(docs/spec.md#running-e911d): both forms at once, or a file that cannot be read, is
refused naming the setting (and the path); the value is masked wherever it is shown."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from e911d.config import ConfigError, Settings, load_settings, masked_settings
from e911d.config.secret_settings import secret_fields
from e911d.daemon.commands.cli import main

SECRET = "s3cr3t-from-a-file"  # noqa: S105  a test value


def secrets_of(
    model: type[BaseModel] = Settings, path: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every secret setting's path, found from the types (a new one is covered at once)."""
    found = [(*path, name) for name in secret_fields(model)]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += secrets_of(annotation, (*path, name))
    return found


SECRETS = secrets_of()
# What each secret needs beside it to be accepted at all.
COMPANIONS: dict[tuple[str, ...], dict[str, str]] = {
    ("kafka", "sasl_password"): {
        "E911_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "E911_KAFKA__SASL_MECHANISM": "PLAIN",
        "E911_KAFKA__SASL_USERNAME": "svc",
    },
    ("kafka", "ssl_key_password"): {
        "E911_KAFKA__SECURITY_PROTOCOL": "SSL",
        "E911_KAFKA__SSL_CERTFILE": "/c.pem",
    },
}
VALUES = {("postgres", "dsn"): f"postgresql://svc:{SECRET}@db:5432/e911d"}


def env_name(path: tuple[str, ...], suffix: str = "") -> str:
    return "E911_" + "__".join(path).upper() + suffix


def value_of(settings: Settings, path: tuple[str, ...]) -> Any:
    node: Any = settings
    for part in path:
        node = getattr(node, part)
    return node


def test_the_secrets_are_found() -> None:
    assert set(SECRETS) == {
        ("kafka", "sasl_password"),
        ("kafka", "ssl_key_password"),
        ("postgres", "dsn"),
        ("log", "redact_key"),
    }


@pytest.mark.parametrize("path", SECRETS, ids=".".join)
@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_each_secret_is_read_from_its_file_form(
    path: tuple[str, ...], ending: str, tmp_path: Path
) -> None:
    value = VALUES.get(path, SECRET)
    secret = tmp_path / "secret"
    secret.write_text(value + ending, encoding="utf-8")
    env = {**COMPANIONS.get(path, {}), env_name(path, "_FILE"): str(secret)}
    settings = load_settings(environ=env)
    assert value_of(settings, path).get_secret_value() == value  # newline dropped
    masked = masked_settings(settings)
    assert SECRET not in json.dumps(masked)
    section = masked[path[0]]
    assert section[f"{path[1]}_file"] == str(secret)


@pytest.mark.parametrize("path", SECRETS, ids=".".join)
def test_the_toml_file_form(path: tuple[str, ...], tmp_path: Path) -> None:
    value = VALUES.get(path, SECRET)
    secret = tmp_path / "secret"
    secret.write_text(value + "\n", encoding="utf-8")
    config = tmp_path / "e911d.toml"
    config.write_text(f'[{path[0]}]\n{path[1]}_file = "{secret}"\n', encoding="utf-8")
    settings = load_settings(config_file=config, environ=COMPANIONS.get(path, {}))
    assert value_of(settings, path).get_secret_value() == value


@pytest.mark.parametrize("path", SECRETS, ids=".".join)
def test_both_forms_are_refused_naming_both(path: tuple[str, ...], tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(VALUES.get(path, SECRET), encoding="utf-8")
    plain = VALUES.get(path, "plain-value")
    env = {**COMPANIONS.get(path, {}), env_name(path): plain, env_name(path, "_FILE"): str(secret)}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    message = str(caught.value)
    assert f"{path[1]} and {path[1]}_file are both set" in message
    assert f"env {env_name(path)};" in message or f"env {env_name(path)})" in message
    assert f"env {env_name(path, '_FILE')}" in message
    assert SECRET not in message and "plain-value" not in message


def test_both_forms_across_the_environment_and_the_toml_file_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text(VALUES[("postgres", "dsn")])
    config = tmp_path / "e911d.toml"
    config.write_text("[postgres]\ndsn = 'postgresql://u@db/x'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ={"E911_POSTGRES__DSN_FILE": str(secret)})
    message = str(caught.value)
    assert "dsn and dsn_file are both set" in message
    assert f"file {config}: key postgres.dsn" in message
    assert "env E911_POSTGRES__DSN_FILE" in message


def _unreadable(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"\xff\xfe secret")
    elif kind == "empty":
        path.write_text("\n")
    return path


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8", "empty"])
def test_an_unreadable_file_is_refused_naming_the_setting_and_the_path(
    kind: str, tmp_path: Path
) -> None:
    path = _unreadable(tmp_path, kind)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"E911_POSTGRES__DSN_FILE": str(path)})
    message = str(caught.value)
    assert "env E911_POSTGRES__DSN_FILE (postgres.dsn_file)" in message
    assert str(path) in message
    assert SECRET not in message


def test_a_bad_value_read_from_a_file_names_the_file_form(tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text(f"mysql://svc:{SECRET}@db/x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"E911_POSTGRES__DSN_FILE": str(secret)})
    message = str(caught.value)
    assert "read from the file named by env E911_POSTGRES__DSN_FILE" in message
    assert "not mysql://" in message and SECRET not in message


def test_e911d_config_masks_the_secret_and_says_it_came_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "dsn"
    secret.write_text(VALUES[("postgres", "dsn")] + "\n")
    for name in list(os.environ):
        if name.upper().startswith("E911_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("E911_POSTGRES__DSN_FILE", str(secret))
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    assert 'dsn = "postgresql://svc:***@db:5432/e911d"' in out
    assert f'dsn_file = "{secret}"  # dsn (masked above) was read from this file' in out

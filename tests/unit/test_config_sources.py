"""Configuration errors say where the bad value came from and what it was;
enum values are accepted in any case; test-only variables are outside the namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from e911d.config import ConfigError, load_settings


def error_of(env: dict[str, str], file: Path | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=file, environ=env)
    return str(caught.value)


def test_a_bad_file_value_names_the_file_and_key_and_shows_the_value(tmp_path: Path) -> None:
    path = tmp_path / "e911d.toml"
    path.write_text("[checks]\ninitial_delay_seconds = -1\n", encoding="utf-8")
    message = error_of({}, path)
    assert f"file {path}: key checks.initial_delay_seconds" in message
    assert "(got -1)" in message
    assert "env" not in message


def test_a_bad_env_value_names_the_variable_and_shows_the_value() -> None:
    message = error_of({"E911_HTTP__PORT": "not-a-port"})
    assert "env E911_HTTP__PORT" in message
    assert "'not-a-port'" in message


def test_env_wins_so_the_env_is_named_even_when_the_file_sets_the_key_too(
    tmp_path: Path,
) -> None:
    path = tmp_path / "e911d.toml"
    path.write_text("[http]\nport = 80\n", encoding="utf-8")
    message = error_of({"E911_HTTP__PORT": "99999"}, path)
    assert "env E911_HTTP__PORT" in message and "'99999'" in message
    assert "file" not in message


def test_the_value_of_a_secret_is_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "e911d.toml"
    path.write_text('[kafka]\nsasl_password = 123456789\n[log]\nlevel = "loud"\n')
    message = error_of({}, path)
    assert f"file {path}: key kafka.sasl_password" in message
    assert "123456789" not in message
    assert "a secret, not shown" in message
    assert f"file {path}: key log.level" in message and "'loud'" in message


def test_an_unknown_file_key_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "e911d.toml"
    path.write_text("[checks]\nintervl_seconds = 5\n", encoding="utf-8")
    assert f"file {path}: key checks.intervl_seconds: unknown key" in error_of({}, path)


def test_a_cross_field_error_names_every_source_that_set_the_section(tmp_path: Path) -> None:
    path = tmp_path / "e911d.toml"
    path.write_text("[postgres]\npool_min_size = 30\n", encoding="utf-8")
    message = error_of({"E911_POSTGRES__POOL_MAX_SIZE": "3"}, path)
    assert "pool_min_size must not exceed pool_max_size" in message
    assert "env E911_POSTGRES__POOL_MAX_SIZE" in message
    assert f"file {path}: key postgres.pool_min_size" in message


@pytest.mark.parametrize(
    ("name", "given", "attribute", "stored"),
    [
        ("E911_LOG__LEVEL", "INFO", ("log", "level"), "info"),
        ("E911_LOG__LEVEL", "Warning", ("log", "level"), "warning"),
        ("E911_LOG__FORMAT", "JSON", ("log", "format"), "json"),
        ("E911_KAFKA__SECURITY_PROTOCOL", "sasl_ssl", ("kafka", "security_protocol"), "SASL_SSL"),
        (
            "E911_KAFKA__SASL_MECHANISM",
            "scram-sha-256",
            ("kafka", "sasl_mechanism"),
            "SCRAM-SHA-256",
        ),
    ],
)
def test_enum_values_are_case_insensitive_and_normalised(
    name: str, given: str, attribute: tuple[str, str], stored: str
) -> None:
    # A SASL protocol or mechanism is only accepted with the rest of SASL's settings.
    sasl = {
        "E911_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "E911_KAFKA__SASL_MECHANISM": "PLAIN",
        "E911_KAFKA__SASL_USERNAME": "u",
        "E911_KAFKA__SASL_PASSWORD": "p",
    }
    environ = {**sasl, name: given} if name.startswith("E911_KAFKA__") else {name: given}
    settings = load_settings(environ=environ)
    section, field = attribute
    assert getattr(getattr(settings, section), field) == stored


def test_the_test_database_variable_is_outside_the_configuration_namespace() -> None:
    # tests/conftest.py reads it; an operator's or contributor's shell may set it.
    settings = load_settings(environ={"E911D_TEST_POSTGRES_DSN": "postgresql://x@y/z"})
    assert settings.http.port == 9911


def test_the_old_test_variable_name_is_refused_with_its_new_name() -> None:
    message = error_of({"E911_TEST_POSTGRES_DSN": "postgresql://x@y/z"})
    assert "E911D_TEST_POSTGRES_DSN" in message

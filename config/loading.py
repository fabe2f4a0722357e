"""Loading the settings: a TOML file, the environment and explicit overrides, merged
and validated once, every error worded with where the bad value came from."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from e911d.config.secret_settings import masked
from e911d.config.settings import ConfigError, Settings
from e911d.config.sources import Sources, format_validation_error, unknown_env_keys

# Test-only variables live outside the configuration namespace; this one used to be
# inside it, so a contributor's shell that still sets it gets told the new name.
_RENAMED = {"E911_TEST_POSTGRES_DSN": "E911D_TEST_POSTGRES_DSN"}


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from an optional TOML file, the environment and explicit overrides.

    Raises ConfigError with every offending key named, with where it was set (file
    and key, or environment variable) and, unless it is a secret, the value.
    """
    env = dict(os.environ if environ is None else environ)
    unknown = unknown_env_keys(env, Settings)
    if unknown:
        named = [
            f"{n} (now {_RENAMED[n.upper()]})" if n.upper() in _RENAMED else n for n in unknown
        ]
        raise ConfigError("unknown configuration keys in environment: " + ", ".join(named))
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
    merged = _deep_merge(file_values, dict(overrides or {}))
    saved = dict(os.environ)
    try:
        if environ is not None:
            os.environ.clear()
            os.environ.update(env)
        return Settings(**merged)
    except ValidationError as exc:
        sources = Sources(env, config_file, file_values, dict(overrides or {}))
        raise ConfigError(format_validation_error(exc, sources, Settings)) from exc
    except SettingsError as exc:  # a section given as JSON that is not JSON
        raise ConfigError(f"invalid configuration in environment: {exc}") from exc
    finally:
        if environ is not None:
            os.environ.clear()
            os.environ.update(saved)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by ``***``."""
    return masked(settings)

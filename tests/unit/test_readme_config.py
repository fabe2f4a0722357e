"""The README's configuration table lists every key `e911d config` prints:
derived from the code, so a key added without a row (or a row left for a key that
went away) fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from e911d.config import load_settings, masked_settings
from e911d.config.sources import ENV_PREFIX

README = Path(__file__).resolve().parents[2] / "README.md"


def env_names(data: dict[str, Any], path: tuple[str, ...] = ()) -> set[str]:
    names: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict):
            names |= env_names(value, (*path, key))
        else:
            names.add(ENV_PREFIX + "__".join((*path, key)).upper())
    return names


def documented() -> set[str]:
    text = README.read_text("utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `E911_")]
    return {name for row in rows for name in re.findall(r"`(E911_\w+)`", row.split("|")[1])}


def test_the_table_lists_exactly_the_keys_e911d_config_prints() -> None:
    printed = env_names(masked_settings(load_settings(environ={})))
    table = documented()
    assert sorted(printed - table) == [], "keys missing from README.md's table"
    assert sorted(table - printed) == [], "rows in README.md's table for no key"


def test_the_comparison_sees_nested_keys() -> None:
    printed = env_names(masked_settings(load_settings(environ={})))
    assert "E911_KAFKA__TOPICS__ALERTS" in printed and "E911_MIGRATE_ON_START" in printed

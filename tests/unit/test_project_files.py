"""What ships beside the code: the licence the package declares, and what each make
target installs (`make run` is the demo: it must not need the test tools)."""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The MD5 of https://www.apache.org/licenses/LICENSE-2.0.txt, the text as Apache
# publishes it (terms and appendix): a licence file edited by hand differs.
APACHE_2_0_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def test_the_license_file_is_the_full_apache_2_0_text_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.md5(text, usedforsecurity=False).hexdigest() == APACHE_2_0_MD5
    assert b"END OF TERMS AND CONDITIONS" in text


def _recipes(target: str) -> str:
    """The commands `make` would run for ``target`` from nothing (-B), run by nobody (-n)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_run_installs_the_demo_without_the_test_tools() -> None:
    run = _recipes("run")
    assert "-e '.[embedded]'" in run
    assert ".[dev]" not in run
    assert run.rstrip().endswith("e911d dev")


@pytest.mark.parametrize("target", ["check", "test"])
def test_make_check_and_test_keep_the_development_install(target: str) -> None:
    recipes = _recipes(target)
    assert "-e '.[dev]'" in recipes
    assert ".[embedded]" not in recipes

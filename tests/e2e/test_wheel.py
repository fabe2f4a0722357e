"""The built wheel claims one import name, ``e911d``, and carries its data files.

An editable install hides packaging mistakes (a folder that is not a package, SQL
files left out); this builds the real wheel and installs it into a fresh venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import e911d

pytestmark = pytest.mark.e2e


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> tuple[Path, set[str]]:
    """A fresh venv with only the wheel in it: (its python, what the wheel added)."""
    tmp = tmp_path_factory.mktemp("wheel")
    venv.create(tmp / "venv", with_pip=False)  # the test venv's pip installs into it
    python = tmp / "venv" / "bin" / "python"
    purelib = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp).strip()
    )
    before = {p.name for p in purelib.iterdir()}
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=tmp,
    )
    added = {p.name for p in purelib.iterdir()} - before
    return python, added


def test_the_wheel_installs_only_the_e911d_package(installed: tuple[Path, set[str]]) -> None:
    _, added = installed
    assert added == {"e911d", f"e911d-{e911d.__version__}.dist-info"}


def test_the_wheel_carries_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as built:
        names = built.namelist()
        (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert b"Apache License" in built.read(license_file)


@pytest.mark.parametrize("name", ["daemon", "consumers", "schedulers", "config"])
def test_the_repository_folders_are_not_top_level_packages(
    installed: tuple[Path, set[str]], name: str, tmp_path: Path
) -> None:
    python, _ = installed
    done = subprocess.run(
        [str(python), "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr


def test_the_console_script_and_the_data_files_work(
    installed: tuple[Path, set[str]], tmp_path: Path
) -> None:
    python, _ = installed
    # Dependencies come from the test venv (the wheel was installed without them); the
    # e911d code itself comes from the wheel, never from the checkout.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_path("purelib")}
    help_text = run(python.with_name("e911d"), "--help", cwd=tmp_path, env=env)
    assert "run" in help_text and "migrate" in help_text
    where = run(
        python,
        "-c",
        "import e911d, e911d.daemon.store.db as db, e911d.daemon.commands.dev as dev; "
        "print(e911d.__file__); print(len(db.migration_files())); "
        "print(sorted(db.load_queries('outbox.sql'))); "
        "print(len(dev.demo_directory()['accounts']))",
        cwd=tmp_path,
        env=env,
    ).split("\n")
    assert where[0].startswith(str(python.parents[1]))  # the venv's copy
    assert int(where[1]) >= 2
    assert where[2] == "['outbox_batch', 'outbox_delete', 'outbox_hold_limit', 'outbox_pending']"
    assert int(where[3]) >= 1

"""The built wheel, once per run: both the packaging checks and the production install
test use it, and building takes seconds."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Not part of the package, or made by builds and tools: left out of the build's copy.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def _run_folder(factory: pytest.TempPathFactory) -> Path:
    """A folder of this run that every worker sees: with pytest-xdist each worker has a
    base folder of its own inside the run's; without it, the run's base folder."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by the first worker that needs it, under a lock, and reused by the others.

    Built from a copy of the source tree: pip builds in the tree it is given (build/,
    e911d.egg-info), where two builds at once, or a build beside an editable install,
    would trip over each other.
    """
    run = _run_folder(tmp_path_factory)
    dist = run / "e911d-wheel"
    with _locked(run / "e911d-wheel.lock"):
        if not dist.is_dir():
            work = run / "e911d-wheel-build"
            shutil.rmtree(work, ignore_errors=True)
            source = work / "source"
            shutil.copytree(ROOT, source, symlinks=True, ignore=_NOT_COPIED)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "--no-deps",
                    "-q",
                    "-w",
                    str(work / "dist"),
                    str(source),
                ],
                cwd=work,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            (work / "dist").rename(dist)  # only a finished build is ever found there
    (built,) = dist.glob("e911d-*.whl")
    return built

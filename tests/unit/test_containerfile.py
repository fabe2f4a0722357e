"""deploy/Containerfile keeps the promises a platform relies on.

`make image-check` builds and runs the image, but needs podman and minutes, so it is
not part of `make test`; these checks read the file and catch the drift that matters
(a shell-form entrypoint that swallows SIGTERM, a probe on a renamed path, root).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from e911d.config import Settings

CONTAINERFILE = Path(__file__).resolve().parents[2] / "deploy" / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = CONTAINERFILE.read_text("utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def only(stage: list[tuple[str, str]], word: str) -> str:
    found = [rest for w, rest in stage if w == word]
    assert len(found) == 1, f"{word}: {found}"
    return found[0]


def test_two_stages_on_one_overridable_base() -> None:
    steps = instructions()
    assert ("ARG", "BASE_IMAGE=python:3.12-slim") in steps
    froms = [rest for word, rest in steps if word == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]


def test_entrypoint_is_exec_form_e911d_run() -> None:
    stage = final_stage()
    # Exec form: e911d is PID 1 and receives SIGTERM itself, no shell in between.
    entry = json.loads(only(stage, "ENTRYPOINT")) + json.loads(only(stage, "CMD"))
    assert entry == ["e911d", "run"]
    assert only(stage, "STOPSIGNAL") == "SIGTERM"


def test_runs_as_a_numeric_non_root_user() -> None:
    uid, gid = only(final_stage(), "USER").split(":")
    assert int(uid) > 0 and int(gid) > 0


def test_healthcheck_and_port_follow_the_http_settings() -> None:
    stage = final_stage()
    port = Settings().http.port
    assert only(stage, "EXPOSE") == str(port)
    health = only(stage, "HEALTHCHECK")
    assert "/healthz" in health and f"'{port}'" in health
    assert "CMD [" in health  # exec form: no shell needed in the image


def test_installs_the_wheel_without_extras_and_labels_the_version() -> None:
    stage = final_stage()
    installs = [rest for word, rest in stage if word == "RUN" and "pip install" in rest]
    assert len(installs) == 1
    assert "--no-index" in installs[0]
    assert re.search(r"pip install [^&]* e911d( |$)", installs[0]), installs[0]
    labels = " ".join(rest for word, rest in stage if word == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env

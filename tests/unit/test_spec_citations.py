"""The repository cites its own contract, docs/spec.md, by section anchor, and
nothing outside itself: a citation of a section that does not exist, of a document
outside the repository, or of a tracker's issue number fails here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec.md"
CITATION = re.compile(r"spec\.md#([a-z0-9-]+)")
FOREIGN = re.compile(r"SPEC §|SPEC\.md|\.\./shared|\b[Ii]ssues? #?\d+\b")


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to '-'."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def tracked_texts() -> list[tuple[str, str]]:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    out = []
    for name in files:
        path = ROOT / name
        if path.is_symlink() or not path.is_file():
            continue
        try:
            out.append((name, path.read_text("utf-8")))
        except UnicodeDecodeError:
            continue
    return out


def test_anchors_follow_githubs_rule() -> None:
    assert anchors("## What a check decides\n### Not yet built") == {
        "what-a-check-decides",
        "not-yet-built",
    }


def test_every_citation_names_a_section_of_the_spec() -> None:
    known = anchors(SPEC.read_text("utf-8"))
    dangling = [
        f"{name}: #{anchor}"
        for name, text in tracked_texts()
        for anchor in CITATION.findall(text)
        if anchor not in known
    ]
    assert dangling == []


def test_nothing_cites_a_document_or_tracker_outside_the_repository() -> None:
    this = Path(__file__).relative_to(ROOT).as_posix()
    found = [
        f"{name}:{n}: {line.strip()[:80]}"
        for name, text in tracked_texts()
        if name != this
        for n, line in enumerate(text.splitlines(), 1)
        if FOREIGN.search(line)
    ]
    assert found == []


def test_the_code_cites_the_spec() -> None:
    cited = sum(len(CITATION.findall(t)) for n, t in tracked_texts() if n.endswith(".py"))
    assert cited > 20

"""`directory lint --file`: what the operator reads for good and for broken files.

A broken file is reported as `directory import` reports it (each problem with its
path) and exits 1; it never crashes, whatever the file holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e911d.config import load_settings
from e911d.daemon.commands.directory_file import MAX_FILE_BYTES
from e911d.daemon.commands.lint.command import lint_command

ADDRESS = "{street: 1 Main St, city: X, region: Y, postal_code: '1', country: US}"
GOOD = f"""
accounts:
  - account_id: acme
    e911_recommendations: true
    locations:
      - {{location_id: hq, name: HQ, address: {ADDRESS}}}
    ip_groups:
      - {{ip_group_id: g, name: G, location_id: hq, addresses: [10.0.0.0/8]}}
    users:
      - {{user_id: u1, e911_location_id: hq}}
"""


async def run(
    tmp_path: Path, text: str | bytes, name: str = "d.yaml", *args: str, json_out: bool = False
) -> int:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, "utf-8")
    settings = load_settings(environ={})
    return await lint_command(settings, file=path, accounts=list(args), as_json=json_out)


async def test_a_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(tmp_path, GOOD) == 0
    assert capsys.readouterr().out == "no findings in 1 account\n"


async def test_an_error_finding_exits_1_and_warnings_alone_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(tmp_path, GOOD.replace("e911_location_id: hq", "e911_location_id: x")) == 1
    assert "user_location_missing" in capsys.readouterr().out
    assert await run(tmp_path, GOOD.replace("e911_location_id: hq", "e911_location_id: null")) == 0
    assert "user_without_location" in capsys.readouterr().out


async def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps({"accounts": [{"account_id": "a", "e911_recommendations": True}]})
    assert await run(tmp_path, text, "d.json", json_out=True) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in doc["findings"]] == ["account_without_locations"]
    assert doc["summary"] == {"errors": 1, "warnings": 0, "accounts": 1}


async def test_an_account_not_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(tmp_path, GOOD, "d.yaml", "acme", "nope") == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "no account 'nope' in" in out.err


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("d.txt", "accounts: []", "cannot tell the format"),
        ("d.yaml", "accounts: [", "invalid YAML at line"),
        ("d.json", "{", "invalid JSON at line"),
        ("d.yaml", b"accounts: \xff\xfe", "not UTF-8"),
        ("d.yaml", "a: &x [1]\nb: *x\n", "anchors and aliases"),
        ("d.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("d.json", '{"accounts": [' + "1" * 5000 + "]}", "invalid JSON"),
    ],
)
async def test_unreadable_files_are_one_line_and_exit_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str | bytes,
    expected: str,
) -> None:
    assert await run(tmp_path, text, name) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert expected in out.err
    assert out.err.splitlines()[-1].endswith("is invalid; nothing was linted")


async def test_an_oversized_file_is_refused_before_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    settings = load_settings(environ={})
    assert await lint_command(settings, file=path, accounts=[], as_json=False) == 1
    assert "larger than the limit" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "d.yaml: the file is empty"),
        ("[1, 2]", "d.yaml: the file holds a list"),
        ("accounts: 3", "accounts: expected a list, got 3"),
        ("accounts: [{account_id: 7}]", "accounts[0].account_id: expected a string, got 7"),
        (
            "accounts: [{account_id: a, users: [{user_id: u, e911_recommendations: yes please}]}]",
            "accounts[0].users[0].e911_recommendations: expected a boolean",
        ),
        (
            "accounts: [{account_id: a, ip_groups: [{ip_group_id: g, name: g, location_id: null, "
            "addresses: [10.0.0.0/33]}]}]",
            "accounts[0].ip_groups[0].addresses[0]:",
        ),
        ("accounts: [{account_id: a, acount: 1}]", "accounts[0].acount: unknown key"),
        ("accounts: [{account_id: a}, {account_id: a}]", "accounts[1].account_id: duplicate"),
        ("accounts: [{account_id: '" + "x" * 10_000 + "'}]", "accounts[0].account_id: is 10000"),
    ],
)
async def test_structural_problems_are_reported_like_the_import_and_nothing_is_linted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    assert await run(tmp_path, text) == 1
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert any(expected in line for line in lines), lines
    assert lines[-1].endswith("nothing was linted")


async def test_dangling_references_are_findings_not_structural_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("location_id: hq, addresses", "location_id: gone, addresses")
    assert await run(tmp_path, text, json_out=True) == 0
    doc = json.loads(capsys.readouterr().out)
    codes = [f["code"] for f in doc["findings"]]
    assert codes == ["group_location_missing", "location_without_network"]


DOCS = Path(__file__).parents[2] / "docs"


async def test_the_documented_example_output_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(environ={})
    example = DOCS / "directory.example.yaml"
    assert await lint_command(settings, file=example, accounts=[], as_json=False) == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) > 1
    assert text in (DOCS / "lint.md").read_text("utf-8")


async def test_the_documented_json_example_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(environ={})
    example = DOCS / "directory.example.yaml"
    assert await lint_command(settings, file=example, accounts=["acme"], as_json=True) == 0
    printed = capsys.readouterr().out
    doc = (DOCS / "lint.md").read_text("utf-8")
    shown = doc.split("--account acme --json\n", 1)[1].split("```", 1)[0]
    assert json.loads(shown) == json.loads(printed)
    assert all(f["entity_id"] for f in json.loads(printed)["findings"])


def test_every_code_is_documented_with_its_severity() -> None:
    from e911d.daemon.commands.lint.findings import SEVERITY, Code

    doc = (DOCS / "lint.md").read_text("utf-8")
    assert set(SEVERITY) == set(Code)
    for code, severity in SEVERITY.items():
        assert f"| `{code}` | {severity} |" in doc

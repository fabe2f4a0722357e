"""The fast (libyaml) YAML reader of directory files gives exactly what the
pure-Python reader gives, and hands every text it cannot vouch for to that reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from e911d.daemon.commands.directory_file import files
from e911d.daemon.commands.directory_file.files import parse

EXAMPLE = Path(__file__).parents[2] / "docs" / "directory.example.yaml"

TRICKY = """\
accounts:
  - account_id: a
    e911_recommendations: yes
    e911_recommendations: no
    locations:
      - {location_id: hq, name: "R&D lab*", address: {street: x, city: y, country: US,
         postal_code: 01234}}
    ip_groups:
      - ip_group_id: g
        name: G
        location_id: hq
        addresses: [10.0.0.0/8, 1.2.3.4]
        bssids: [f0:6e:0b:c2:03:2*, 'F0-6E-0B-C2-03-21']
    users: [{user_id: 7, e911_location_id: ~}, {user_id: "u", e911_location_id: null}]
"""


def pure(text: str) -> object:
    return yaml.load(text, Loader=files._Loader)  # noqa: S506  the module's safe loader


def same(a: object, b: object) -> bool:
    """Equal data, and equal duplicates and unquoted-scalar sources at every level."""
    if type(a) is not type(b) or a != b:
        return False
    if getattr(a, "duplicates", None) != getattr(b, "duplicates", None):
        return False
    if getattr(a, "sources", None) != getattr(b, "sources", None):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    return True


@pytest.mark.parametrize("text", [EXAMPLE.read_text("utf-8"), TRICKY, "", "accounts: []\n"])
def test_the_fast_reader_reads_what_the_pure_one_reads(text: str) -> None:
    assert files._CLoader is not None  # PyYAML's wheels bundle libyaml
    assert same(files._fast_yaml(text), pure(text))
    assert same(parse(text, "yaml"), pure(text))


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [x]\nb: *a\n",  # an alias
        "accounts: &unused []\n",  # an anchor
        "accounts: [&a x, *a]\n",
        "accounts: {a: 1, b: [\n",  # refused by libyaml: the pure reader words it
        "[" * 5000 + "]" * 5000,  # deeper than libyaml goes
    ],
)
def test_the_fast_reader_hands_over_what_it_cannot_vouch_for(text: str) -> None:
    with pytest.raises(files._Fallback):
        files._fast_yaml(text)


def test_a_text_that_only_looks_like_it_holds_an_anchor_reads_the_same() -> None:
    text = TRICKY.replace("R&D lab*", "R & D *lab*")
    with pytest.raises(files._Fallback):
        files._fast_yaml(text)
    assert same(parse(text, "yaml"), pure(text))


def test_an_alias_the_text_check_missed_is_still_caught() -> None:
    node = yaml.compose("a: &x [1]\nb: *x\n", Loader=yaml.CSafeLoader)
    assert node is not None
    with pytest.raises(files._Fallback):
        files._build(files._FastLoader(""), node, set())


@pytest.mark.parametrize(
    "text",
    [
        "a:\tb\n",
        "a: b\t\n",
        "- a\n-\tb\n",
        "a: b\x01\n",
        "a: \x85b\n",
        "a: b\u2028c\n",
        "a: \ud800\n",
        "a: b\x00\n",
        "a: \ufffe\n",
        "a: b\ufeffc\n",
        "a: b\rc: d\n",
        "a:  b  \n  c\n",
        "a: >\n  x\n\n  y\n",
        "a: 2001-01-01\n",
        "a: !!binary aGk=\n",
        "? a\n: b\n",
        "? [a]\n: b\n",
        "a: !!set {x}\n",
        "a: 1" + "0" * 5000 + "\n",
    ],
)
def test_where_the_readers_differ_the_pure_ones_answer_counts(text: str) -> None:
    try:
        expected: object = pure(text)
    except (yaml.YAMLError, ValueError) as exc:
        expected = type(exc)
    try:
        got: object = files._fast_yaml(text)
    except files._Fallback:
        return  # the pure reader reads it
    assert same(got, expected)

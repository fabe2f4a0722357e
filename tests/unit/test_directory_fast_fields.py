"""The compiled field checks (daemon/commands/directory_file/fast.py) change how fast a valid
file is accepted, never what is accepted or what an invalid one is told: validation
with and without them gives the same result for every field of the shipped example
replaced by every kind of wrong value, removed, or joined by an unknown key."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e911d.daemon.commands.directory_file import Validated, load, parse, validate, validation

EXAMPLE = Path(__file__).parents[2] / "docs" / "directory.example.yaml"
HOSTILE: list[object] = [
    None,
    0,
    1.5,
    -1e309,
    float("nan"),
    True,
    "",
    " ",
    "x" * 5000,
    "a\x00b",
    "10.0.0.0/8",
    [],
    ["x"],
    [1],
    {},
    {"street": "s", "city": "c", "country": "US"},
    {"lat": 91, "lon": 0},
    {"chassis_id": "c"},
]


def both(data: object) -> tuple[Validated, Validated]:
    validation.FAST = False
    try:
        slow = validate(data, check_references=False)
    finally:
        validation.FAST = True
    return slow, validate(data, check_references=False)


def mappings(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from mappings(v)
    elif isinstance(node, list):
        for v in node:
            yield from mappings(v)


def variants(document: object) -> Iterator[object]:
    count = sum(1 for _ in mappings(document))
    for i in range(count):
        keys = list(list(mappings(document))[i])
        for key in [*keys, "unknown_key"]:
            for value in [*HOSTILE, "<removed>"]:
                doc = copy.deepcopy(document)
                target = list(mappings(doc))[i]
                if value == "<removed>":
                    target.pop(key, None)
                else:
                    target[key] = value
                yield doc


@pytest.fixture(scope="module")
def example() -> object:
    return load(EXAMPLE)


def test_the_example_validates_the_same_way_and_fast(example: object) -> None:
    slow, fast = both(example)
    assert fast == slow
    assert fast.directory is not None


def test_every_broken_field_gives_the_same_issues(example: object) -> None:
    plain = copy.deepcopy(example)  # plain dicts: the loader's extras are not the subject
    compared = 0
    for doc in variants(plain):
        slow, fast = both(doc)
        assert fast == slow, doc
        compared += 1
    assert compared > 1000


def test_repeated_keys_are_never_taken_by_the_fast_checks(example: object) -> None:
    text = EXAMPLE.read_text("utf-8").replace(
        "e911_recommendations: true",
        "e911_recommendations: true\n    e911_recommendations: true",
        1,
    )
    slow, fast = both(parse(text, "yaml"))
    assert fast == slow
    assert any("more than once" in issue.message for issue in fast.issues)


def test_users_are_checked_in_bulk_and_nested_kinds_never_are(example: object) -> None:
    from e911d.daemon.commands.directory_file.fast import bulk_changes
    from e911d.daemon.commands.directory_file.field_rules import IP_GROUPS, LOCATIONS, USERS

    account = copy.deepcopy(example)["accounts"][0]  # type: ignore[index]
    built = bulk_changes(account["users"], USERS, account["account_id"])
    assert built is not None and len(built) == len(account["users"])
    # Nested mappings (an address, a switch) may hold unknown keys that msgspec would
    # ignore where the walk refuses them: those kinds always take the walk.
    assert bulk_changes(account["locations"], LOCATIONS, account["account_id"]) is None
    assert bulk_changes(account["ip_groups"], IP_GROUPS, account["account_id"]) is None


@pytest.mark.parametrize(
    "break_users",
    [
        lambda users: users.append(dict(users[0])),  # a duplicate id
        lambda users: users[-1].update(account_id="other"),  # an implied key given
        lambda users: users[0].update(e911_recommendations=1),  # an int for a bool
        lambda users: users[0].update(e911_location_id=""),  # an empty id
        lambda users: users.append("not a mapping"),
    ],
)
def test_a_user_list_with_any_issue_is_worded_by_the_walk(example: object, break_users) -> None:
    doc = copy.deepcopy(example)
    break_users(doc["accounts"][0]["users"])  # type: ignore[index]
    slow, fast = both(doc)
    assert fast == slow
    assert fast.issues and fast.directory is None

"""Directory notices: parsing what the triggers send, and coalescing bursts."""

from __future__ import annotations

import json

import pytest

from e911d.daemon.store.notify import Notice, PendingChanges, parse_notice


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"k": "account", "a": "acme"}', Notice("account", "acme")),
        ('{"k": "directory", "a": "acme"}', Notice("directory", "acme")),
        ('{"k": "user", "a": "acme", "u": "alice"}', Notice("user", "acme", "alice")),
        ('{"k": "all"}', Notice("all", None)),
        # Extra keys are ignored (a newer schema may add some).
        ('{"k": "user", "a": "acme", "u": "alice", "x": 1}', Notice("user", "acme", "alice")),
    ],
)
def test_trigger_payloads_parse(payload: str, expected: Notice) -> None:
    assert parse_notice(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not json",
        "[]",
        '"account"',
        '{"k": "bogus", "a": "acme"}',
        '{"k": "account"}',
        '{"k": "account", "a": ""}',
        '{"k": "account", "a": 7}',
        '{"k": "user", "a": "acme"}',
        '{"k": "user", "a": "acme", "u": null}',
        json.dumps({"k": "user", "a": "acme", "u": ["x"]}),
    ],
)
def test_anything_else_on_the_channel_is_ignored(payload: str) -> None:
    assert parse_notice(payload) is None


def test_pending_changes_coalesce_and_drain() -> None:
    pending = PendingChanges()
    assert not pending
    for _ in range(3):
        pending.add(Notice("directory", "acme"))
        pending.add(Notice("user", "acme", "alice"))
    pending.add(Notice("user", "globex", "bob"))
    assert pending.count == 7
    drained = pending.drain()
    assert not pending and pending.accounts == set() and pending.users == set()
    assert drained.accounts == {"acme"}
    assert drained.users == {("acme", "alice"), ("globex", "bob")}
    assert not drained.everything


def test_a_crowd_of_users_becomes_one_account_pass() -> None:
    pending = PendingChanges(max_users_per_account=3)
    for i in range(4):
        pending.add(Notice("user", "acme", f"u{i}"))
    pending.add(Notice("user", "globex", "bob"))
    drained = pending.drain()
    assert drained.accounts == {"acme"}
    assert drained.users == {("globex", "bob")}


def test_all_means_every_snapshot_goes() -> None:
    pending = PendingChanges()
    pending.add(Notice("all", None))
    assert pending.drain().everything
    assert not pending.everything

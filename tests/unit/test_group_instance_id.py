"""E911_KAFKA__GROUP_INSTANCE_ID (docs/spec.md#scale-and-durability): the static
membership id's default (a StatefulSet pod's name, nothing else), its validation, and
that the consumer is built with it."""

from __future__ import annotations

import socket

import pytest

from e911d.config import ConfigError, load_settings
from e911d.config.instance_id import statefulset_pod_id
from e911d.daemon.kafka.clients import consumer_config

K8S = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}


@pytest.mark.parametrize(
    "hostname", ["e911d-0", "e911d-1", "e911d-12", "e911d-9999", "e911d-prod-3", "e911d-0.e911d"]
)
def test_a_statefulset_pod_is_static_under_its_own_name(hostname: str) -> None:
    assert statefulset_pod_id(hostname, K8S) == hostname.split(".")[0]


@pytest.mark.parametrize(
    "hostname",
    [
        "e911d-7d9f8b6c4-x2kqz",  # a Deployment's pod: renamed on every rollout
        "e911d-7d9f8b6c4-24567",  # its random suffix may be all digits: 5 of them
        "e911d-01",  # an ordinal has no leading zero
        "e911d",
        "e911d-",
        "0",
        "E911D-0",  # not a pod name (DNS labels are lower case)
    ],
)
def test_other_pods_are_dynamic(hostname: str) -> None:
    assert statefulset_pod_id(hostname, K8S) is None


def test_outside_kubernetes_nothing_is_guessed_from_the_host_name() -> None:
    # Two instances on one host would share its name, and fence each other.
    assert statefulset_pod_id("e911d-0", {}) is None
    assert statefulset_pod_id("e911d-0", {"KUBERNETES_SERVICE_HOST": ""}) is None


def test_the_default_follows_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "e911d-2")
    assert load_settings(environ=K8S).kafka.group_instance_id == "e911d-2"
    assert load_settings(environ={}).kafka.group_instance_id is None
    monkeypatch.setattr(socket, "gethostname", lambda: "e911d-5c7d9-abcde")
    assert load_settings(environ=K8S).kafka.group_instance_id is None


def test_an_explicit_value_wins_and_empty_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "e911d-2")
    given = {**K8S, "E911_KAFKA__GROUP_INSTANCE_ID": "site-a.e911d_1"}
    assert load_settings(environ=given).kafka.group_instance_id == "site-a.e911d_1"
    off = {**K8S, "E911_KAFKA__GROUP_INSTANCE_ID": ""}
    assert load_settings(environ=off).kafka.group_instance_id is None


@pytest.mark.parametrize("bad", ["e911d 0", "e911d/0", "é911d", ".", "..", "x" * 250, "a\nb"])
def test_an_illegal_id_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(ConfigError, match="E911_KAFKA__GROUP_INSTANCE_ID"):
        load_settings(environ={"E911_KAFKA__GROUP_INSTANCE_ID": bad})


def test_the_longest_legal_id_is_taken() -> None:
    longest = "x" * 249
    settings = load_settings(environ={"E911_KAFKA__GROUP_INSTANCE_ID": longest})
    assert settings.kafka.group_instance_id == longest


def test_the_consumer_is_built_with_the_id() -> None:
    static = load_settings(environ={"E911_KAFKA__GROUP_INSTANCE_ID": "e911d-0"})
    assert consumer_config(static).kafka_options["group_instance_id"] == "e911d-0"
    dynamic = load_settings(environ={})
    assert consumer_config(dynamic).kafka_options["group_instance_id"] is None

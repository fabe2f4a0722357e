"""The committed event contracts are what the code generates, and they describe the
events the daemon really reads and writes (docs/spec.md#event-contracts)."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from e911d.consumers.wire import decode_directory_event, decode_session_event
from e911d.daemon.commands import contracts
from e911d.daemon.commands.contract_examples import example_events
from e911d.daemon.core.events import DirectoryEventKind, Id, Invalid, SessionEventKind
from e911d.daemon.core.model import (
    Location,
    MatchedBy,
    Outcome,
    Recommendation,
    RecommendationKind,
    ResolveReason,
    Verdict,
)
from e911d.daemon.store.alert_data import RAISED, RESOLVED
from e911d.daemon.store.alerts import (
    AlertStore,
    ResolvedAlert,
    SessionRef,
    raised_alert,
)
from tests.support import binary, directory, dismissed, ip_changed, login, logout

ROOT = Path(__file__).resolve().parents[2]
T = dt.datetime(2026, 11, 26, 9, 10, tzinfo=dt.UTC)
REF = SessionRef("s1", "acme", "u1", 0)


def committed_schema(event_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ROOT / "docs/schemas" / f"{event_type}.json").read_text())
    return schema


@functools.cache
def committed_asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())
    return doc


@functools.cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(committed_asyncapi(), default_specification=DRAFT202012)
    return Registry().with_resource("urn:asyncapi", resource)


def validate_in_asyncapi(instance: Any, pointer: str) -> None:
    """Validate against a schema inside the AsyncAPI document, its refs resolved there."""
    registry = _registry()
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"urn:asyncapi#{pointer}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(instance)


def validate_data(event_type: str, data: Any) -> None:
    schema = committed_schema(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(data)


def test_the_committed_contracts_are_what_the_code_generates() -> None:
    assert contracts.drift(ROOT) == [], "run `make contracts` and commit the result"


def test_every_event_type_has_a_schema() -> None:
    expected = {*map(str, SessionEventKind), *map(str, DirectoryEventKind), RAISED, RESOLVED}
    assert set(contracts.data_types()) == expected
    assert {p.stem for p in (ROOT / "docs/schemas").glob("*.json")} == expected


def test_a_field_added_to_a_type_is_in_the_contracts_without_other_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = contracts.SESSION_DATA[SessionEventKind.LOGIN]
    extended = msgspec.defstruct(
        "LoginWithRoaming", [("roaming", dict[str, str] | None, None)], bases=(base,)
    )
    monkeypatch.setattr(
        contracts, "SESSION_DATA", {**contracts.SESSION_DATA, SessionEventKind.LOGIN: extended}
    )
    assert "roaming" in contracts.data_schema("e911.session.login")["properties"]
    assert set(contracts.drift(ROOT)) == {
        "docs/asyncapi.yaml is out of date",
        "docs/schemas/e911.session.login.json is out of date",
    }


SAMPLES = [
    login("acme", "u1", "s1", "198.51.100.23"),
    ip_changed("acme", "u1", "s1", "2001:db8::1"),
    logout("acme", "u1", "s1"),
    dismissed("acme", "u1", "s1", "al-1"),
    *directory(users={"u1": (True, "hq"), "u2": (False, None)}),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: json.loads(v)["type"])
def test_sample_inbound_events_validate_in_both_modes(value: bytes) -> None:
    event = json.loads(value)
    validate_data(event["type"], event["data"])
    validate_in_asyncapi(event, f"/components/messages/{event['type']}/payload")
    data, headers = binary(value)
    validate_in_asyncapi(
        {k: v.decode() for k, v in headers}, f"/components/messages/{event['type']}.binary/headers"
    )
    validate_in_asyncapi(json.loads(data), f"/components/messages/{event['type']}.binary/payload")


def test_the_schemas_refuse_what_the_decoder_refuses() -> None:
    event = json.loads(login("acme", "u1", "s1", "198.51.100.23"))
    del event["data"]["ip"]
    with pytest.raises(jsonschema.ValidationError, match="'ip' is a required property"):
        validate_data("e911.session.login", event["data"])
    bad_id = {"account_id": "a\x00", "user_id": "u", "session_id": "s"}
    with pytest.raises(jsonschema.ValidationError):
        validate_data("e911.session.logout", bad_id)
    event["data"]["ip"] = "198.51.100.23"
    del event["time"]  # required on session events
    with pytest.raises(jsonschema.ValidationError, match="'time' is a required property"):
        validate_in_asyncapi(event, "/components/messages/e911.session.login/payload")


def test_unknown_data_fields_are_allowed_by_the_schemas() -> None:
    """docs/spec.md#event-contracts: unknown fields are ignored, so the contract must not refuse
    them."""
    validate_data("e911.account.deleted", {"account_id": "a", "later": {"x": 1}})


def _published(event: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(event)
    return decoded


@pytest.mark.parametrize(
    "recommendation",
    [
        Recommendation(
            RecommendationKind.IP_GROUP_MATCH, (Location("home", "Home"),), MatchedBy.IP
        ),
        Recommendation(RecommendationKind.ALL_LOCATIONS, (Location("a", "A"), Location("b", "B"))),
    ],
    ids=lambda r: str(r.kind),
)
def test_published_alerts_validate(recommendation: Recommendation) -> None:
    store = AlertStore("e911.alerts", "urn:e911d")
    for assigned in (Location("hq", "HQ"), None):
        verdict = Verdict(Outcome.MISMATCH, assigned, recommendation)
        alert = raised_alert(REF, "198.51.100.23", T, 1, verdict, T)
        event = _published(store.raised_event(alert).value)
        assert event["subject"] == "s1"
        validate_data(RAISED, event["data"])
        validate_in_asyncapi(event, f"/components/messages/{RAISED}/payload")
    for reason in ResolveReason:
        event = _published(store.resolved_event(ResolvedAlert("al", REF, reason, T)).value)
        validate_data(RESOLVED, event["data"])
        validate_in_asyncapi(event, f"/components/messages/{RESOLVED}/payload")


# ---- the AsyncAPI document is structurally sound -----------------------------------------

COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_the_asyncapi_document_is_structurally_valid() -> None:
    doc = committed_asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"] == contracts.CONTRACT_VERSION
    assert set(doc) <= {
        "asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
        "components",
    }  # fmt: skip
    refs = _refs(doc)
    assert refs
    for ref in refs:
        _resolve(doc, ref)
    channels = doc["channels"]
    assert {c["address"] for c in channels.values()} == {
        "e911.session-events", "e911.directory-events", "e911.alerts", "e911.dead-letter",
    }  # fmt: skip
    for name, op in doc["operations"].items():
        assert op["action"] in {"send", "receive"}, name
        channel_ref = op["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        for message in op["messages"]:
            # AsyncAPI 3: an operation's messages are those of its own channel.
            assert message["$ref"].startswith(channel_ref + "/messages/"), (name, message)
    for section in ("messages", "schemas"):
        for key in doc["components"][section]:
            assert COMPONENT_KEY.match(key), key
    for key, message in doc["components"]["messages"].items():
        assert "payload" in message, key
        assert message["headers"].get("type") == "object", key
        jsonschema.Draft202012Validator.check_schema(message["payload"])
    for key, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert key


def test_every_id_field_carries_the_id_limits() -> None:
    limits = msgspec.json.schema(Id)
    schema = committed_schema("e911.user.upserted")
    assert schema["properties"]["account_id"]["maxLength"] == limits["maxLength"] == 256
    assert schema["properties"]["account_id"]["pattern"] == "^[^\\x00-\\x1f\\x7f]+$"


# ---- the official AsyncAPI schema, ids, examples, open enumerations, servers -------------

OFFICIAL = ROOT / "tests/contracts/asyncapi-3.0.0.json"


@functools.cache
def official_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(OFFICIAL.read_text("utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_asyncapi_document_is_valid_against_the_official_asyncapi_3_0_0_schema() -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in official_validator().iter_errors(committed_asyncapi())
    ]
    assert errors == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["servers"]["kafka"].pop("protocol"),
        lambda d: d["channels"]["alerts"].update(address=7),
        lambda d: d["components"]["messages"]["e911.alert.raised"].update(examples="none"),
        lambda d: d["operations"]["sendAlerts"].update(action="publish"),  # AsyncAPI 2's verb
    ],
    ids=["server-protocol", "address", "examples", "action"],
)
def test_the_official_schema_refuses_a_broken_document(breakage: Any) -> None:
    """The validation bites: each of these is a mistake AsyncAPI 3.0.0 refuses."""
    doc = copy.deepcopy(committed_asyncapi())
    breakage(doc)
    assert not official_validator().is_valid(doc)


def test_every_schema_has_its_own_id() -> None:
    ids = {t: committed_schema(t)["$id"] for t in contracts.data_types()}
    assert len(set(ids.values())) == len(ids)
    for event_type, schema_id in ids.items():
        assert schema_id == f"urn:e911d:schemas:v1:{event_type}"
    assert contracts.CONTRACT_VERSION.startswith("1.")  # the ids name major version 1


@pytest.mark.parametrize("event_type", sorted(contracts.data_types()))
def test_each_schema_carries_a_real_example_that_it_accepts(event_type: str) -> None:
    (example,) = committed_schema(event_type)["examples"]
    validate_data(event_type, example)
    event = example_events()[event_type]
    assert event["data"] == example
    value = msgspec.json.encode(event)
    if event_type in (RAISED, RESOLVED):
        return  # encoded by AlertStore itself (contract_examples), as published
    decode = decode_session_event if event_type in map(str, SessionEventKind) else None
    decoded = (decode or decode_directory_event)(value, 65_536)
    assert not isinstance(decoded, Invalid), decoded


def test_message_examples_validate_against_their_messages() -> None:
    messages = committed_asyncapi()["components"]["messages"]
    seen = 0
    for name, message in messages.items():
        for example in message.get("examples", ()):
            validate_in_asyncapi(example["payload"], f"/components/messages/{name}/payload")
            validate_in_asyncapi(example["headers"], f"/components/messages/{name}/headers")
            seen += 1
    assert seen == len(messages) - 1  # every message but the dead letter (any bytes)


UNKNOWN = "a-value-from-a-later-minor-version"


def test_outbound_enumerations_accept_a_value_from_a_later_version() -> None:
    """docs/spec.md#alerts-topic: a subscriber validating with the schemas must not drop
    an event for a value it does not know yet."""
    raised = copy.deepcopy(example_events()[RAISED])
    raised["data"]["matched_by"] = UNKNOWN
    raised["data"]["recommendation"]["kind"] = UNKNOWN
    validate_data(RAISED, raised["data"])
    validate_in_asyncapi(raised, f"/components/messages/{RAISED}/payload")
    resolved = copy.deepcopy(example_events()[RESOLVED])
    resolved["data"]["reason"] = UNKNOWN
    validate_data(RESOLVED, resolved["data"])
    validate_in_asyncapi(resolved, f"/components/messages/{RESOLVED}/payload")
    validate_in_asyncapi(
        UNKNOWN, "/components/messages/dead-letter/headers/properties/e911.dlq.reason"
    )
    with pytest.raises(jsonschema.ValidationError):  # still a string
        validate_data(RESOLVED, {**resolved["data"], "reason": 7})


@pytest.mark.parametrize(
    ("name", "enum"),
    [
        ("MatchedBy", MatchedBy),
        ("RecommendationKind", RecommendationKind),
        ("ResolveReason", ResolveReason),
    ],
)
def test_open_enumerations_list_the_known_values_and_the_fallback(name: str, enum: Any) -> None:
    for definitions in (
        committed_schema(RAISED if name != "ResolveReason" else RESOLVED)["$defs"],
        committed_asyncapi()["components"]["schemas"],
    ):
        known, anything = definitions[name]["anyOf"]
        assert set(known["enum"]) == {v.value for v in enum}
        assert anything == {"type": "string"}
        assert contracts.FALLBACKS[name] in definitions[name]["description"]


def test_inbound_enumerations_stay_closed() -> None:
    """The decoder refuses `changed_via: fax`; the schema must refuse it too."""
    data = example_events()["e911.user.location_changed"]["data"]
    with pytest.raises(jsonschema.ValidationError):
        validate_data("e911.user.location_changed", {**data, "changed_via": "fax"})


def test_the_servers_are_placeholders_for_the_deployments_cluster() -> None:
    servers = committed_asyncapi()["servers"]
    assert {s["protocol"] for s in servers.values()} == {"kafka", "kafka-secure"}
    for server in servers.values():
        assert server["host"] == "{bootstrap}"
        assert server["variables"]["bootstrap"]["default"] == "localhost:9092"
    schemes = committed_asyncapi()["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"plain", "scramSha256", "scramSha512", "X509"}


def test_the_changelog_describes_the_current_contract_version() -> None:
    log = (ROOT / "docs/contract-changelog.md").read_text("utf-8")
    versions = re.findall(r"^## (\d+\.\d+\.\d+)", log, re.MULTILINE)
    assert versions and versions[0] == contracts.CONTRACT_VERSION  # newest first
    assert committed_asyncapi()["info"]["version"] == versions[0]
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)

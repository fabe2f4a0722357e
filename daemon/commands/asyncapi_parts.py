"""The AsyncAPI document's parts that do not depend on the data types: the topics, the
messages of each mode (with their examples), the dead letters, the servers and their
security. :mod:`e911d.daemon.commands.contracts` puts them together with the schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from e911d.config.settings import KafkaSettings, TopicSettings
from e911d.consumers.dead_letter import DLQ_DETAIL, DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from e911d.consumers.envelope import CONTENT_TYPE, DATA_CONTENT_TYPE
from e911d.daemon.commands.contract_examples import example_events
from e911d.daemon.core.events import InvalidReason

KAFKA_BINDING_VERSION: Final = "0.5.0"
ENVELOPE: Final = "CloudEvent"


DLQ_REASON_FALLBACK: Final = "`invalid_data`: read `e911.dlq.detail`"


def open_enum(known: Sequence[str], fallback: str, doc: str = "") -> dict[str, Any]:
    """Known values, listed; any other string accepted (docs/events.md, forward
    compatibility): ``anyOf`` keeps the list machine-readable for code generators."""
    values = ", ".join(f"`{v}`" for v in known)
    return {
        "anyOf": [{"enum": list(known)}, {"type": "string"}],
        "description": (f"{doc.strip()} " if doc else "")
        + f"Known values: {values}. A minor version may add values: treat one you do "
        f"not know as {fallback}.",
    }


def topics() -> list[tuple[str, str, str, str, str]]:
    """(channel id, default topic, direction, key, description) of the four topics."""
    t = TopicSettings()
    return [
        (
            "sessionEvents",
            t.session_events,
            "receive",
            "user_id",
            "Session events (docs/spec.md#session-events-topic).",
        ),
        (
            "directoryEvents",
            t.directory_events,
            "receive",
            "account_id",
            "Directory events (docs/spec.md#directory-events-topic).",
        ),
        (
            "alerts",
            t.alerts,
            "send",
            "user_id",
            "Alerts e911d raises and resolves (docs/spec.md#alerts-topic).",
        ),
        (
            "deadLetter",
            t.dead_letter,
            "send",
            "the key of the original message",
            "Inbound messages that could not be decoded or applied, unchanged "
            "(docs/spec.md#dead-letters).",
        ),
    ]


def key_binding(key: str) -> dict[str, Any]:
    return {
        "kafka": {
            "bindingVersion": KAFKA_BINDING_VERSION,
            "key": {"type": "string", "description": f"The message key: {key}."},
        }
    }


def structured(event_type: str, key: str, required: Sequence[str]) -> dict[str, Any]:
    example = {
        "name": f"{event_type.removeprefix('e911.').replace('.', '-')}-example",
        "headers": {"content-type": CONTENT_TYPE},
        "payload": example_events()[event_type],
    }
    return {
        "name": event_type,
        "title": f"{event_type} (structured mode)",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": {"content-type": {"const": CONTENT_TYPE}},
        },
        "payload": {
            "allOf": [
                {"$ref": f"#/components/schemas/{ENVELOPE}"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event_type},
                        "data": {"$ref": f"#/components/schemas/{event_type}"},
                    },
                    "required": sorted({"specversion", "id", "source", "type", "data", *required}),
                },
            ]
        },
        "bindings": key_binding(key),
        "examples": [example],
    }


def binary(
    event_type: str, key: str, required: Sequence[str], envelope: Mapping[str, Any]
) -> dict[str, Any]:
    headers = {f"ce_{a}": envelope[a] for a in ("specversion", "id", "source", "time")}
    headers["ce_type"] = {"const": event_type}
    headers["content-type"] = envelope["datacontenttype"]
    event = example_events()[event_type]
    example = {
        "name": f"{event_type.removeprefix('e911.').replace('.', '-')}-binary-example",
        "headers": {
            **{f"ce_{a}": event[a] for a in ("specversion", "id", "source", "type", "time")},
            "content-type": event["datacontenttype"],
        },
        "payload": event["data"],
    }
    return {
        "name": f"{event_type}.binary",
        "title": f"{event_type} (binary mode)",
        "summary": "CloudEvents Kafka binary content mode: attributes in ce_* headers "
        "(UTF-8, each at most once), the value is the data. Other ce_* headers are "
        "extensions, ignored.",
        "contentType": DATA_CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": headers,
            "required": sorted(
                {"ce_specversion", "ce_id", "ce_source", "ce_type"} | {f"ce_{a}" for a in required}
            ),
        },
        "payload": {"$ref": f"#/components/schemas/{event_type}"},
        "bindings": key_binding(key),
        "examples": [example],
    }


def dead_letter(key: str) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "name": "dead-letter",
        "title": "A dead letter",
        "summary": "The original value and headers, unchanged, plus where it came from and why.",
        "headers": {
            "type": "object",
            "properties": {
                DLQ_TOPIC: {**text, "description": "The topic it was read from."},
                DLQ_PARTITION: {**text, "pattern": "^[0-9]+$"},
                DLQ_OFFSET: {**text, "pattern": "^[0-9]+$"},
                DLQ_REASON: open_enum(sorted(r.value for r in InvalidReason), DLQ_REASON_FALLBACK),
                DLQ_DETAIL: {**text, "description": "Free text: do not parse it."},
            },
            "required": sorted([DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_REASON, DLQ_DETAIL]),
        },
        "payload": {"description": "The original message value, byte for byte (any bytes)."},
        "bindings": key_binding(key),
    }


def servers() -> dict[str, Any]:
    """The cluster e911d is pointed at: every deployment has its own, so its address is
    a variable (E911_KAFKA__BOOTSTRAP_SERVERS), with the settings' default."""
    variables = {
        "bootstrap": {
            "default": KafkaSettings().bootstrap_servers,
            "description": "One broker of the cluster, host:port: what "
            "E911_KAFKA__BOOTSTRAP_SERVERS names.",
        }
    }
    schemes = sorted(security_schemes())
    return {
        "kafka": {
            "host": "{bootstrap}",
            "protocol": "kafka",
            "description": "Plaintext: E911_KAFKA__SECURITY_PROTOCOL=PLAINTEXT (or "
            "SASL_PLAINTEXT).",
            "variables": variables,
        },
        "kafka-tls": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": "TLS: E911_KAFKA__SECURITY_PROTOCOL=SSL (a client certificate, "
            "optional) or SASL_SSL (one of the SASL mechanisms).",
            "variables": variables,
            "security": [{"$ref": f"#/components/securitySchemes/{s}"} for s in schemes],
        },
    }


def security_schemes() -> dict[str, Any]:
    """What E911_KAFKA__SASL_MECHANISM and the ssl_* settings offer (docs/spec.md#running-e911d)."""
    sasl = "SASL over TLS (E911_KAFKA__SASL_MECHANISM={}), user and password."
    return {
        "saslPlain": {"type": "plain", "description": sasl.format("PLAIN")},
        "saslScramSha256": {"type": "scramSha256", "description": sasl.format("SCRAM-SHA-256")},
        "saslScramSha512": {"type": "scramSha512", "description": sasl.format("SCRAM-SHA-512")},
        "mutualTls": {
            "type": "X509",
            "description": "A client certificate (E911_KAFKA__SSL_CERTFILE, SSL_KEYFILE).",
        },
    }

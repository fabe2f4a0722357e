"""E911_LOG__REDACT: IP addresses and user ids never reach a log line in clear, but a
line of one session can still be matched with the next."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from e911d import __version__
from e911d.config import load_settings
from e911d.daemon.runtime.logs import configure_logging, log_starting, redaction_key

KEY = b"k" * 32


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def emit_personal_data() -> None:
    log = structlog.get_logger("e911d.test")
    log.info("session_started", session_id="s-1", account_id="acme", user_id="alice@example")
    log.warning(
        "event_invalid",
        reason="invalid_ip",
        detail="ip '198.51.100.7'; peer 2001:db8::42 at 12:30:05 v1.2.3",
    )
    log.info("ip_changed", ip="203.0.113.9", old_ip="198.51.100.7", nested={"ip": "10.1.2.3"})
    logging.getLogger("aiokafka.conn").warning("connection to 192.0.2.5:9092 failed")
    try:
        raise ValueError('invalid input syntax for type inet: "203.0.113.77"')
    except ValueError:
        log.exception("batch_rejected")


def test_redaction_leaves_no_address_or_user_id_in_any_line(out: io.StringIO) -> None:
    configure_logging("json", "info", stream=out, redact=KEY)
    emit_personal_data()
    text = out.getvalue()
    for personal in (
        "alice@example",
        "198.51.100.7",
        "2001:db8::42",
        "203.0.113.9",
        "10.1.2.3",
        "192.0.2.5",
        "203.0.113.77",
    ):
        assert personal not in text, personal
    started, invalid, _, library, failed = lines(out)
    assert str(started["user_id"]).startswith("h:") and len(str(started["user_id"])) == 14
    assert started["session_id"] == "s-1" and started["account_id"] == "acme"
    # Times and versions look like addresses to a regular expression, not to ipaddress.
    assert "12:30:05" in str(invalid["detail"]) and "v1.2.3" in str(invalid["detail"])
    assert str(library["event"]).endswith(":9092 failed")
    assert "invalid input syntax for type inet" in str(failed["exception"])


def test_the_same_value_gets_the_same_hash_within_a_process(out: io.StringIO) -> None:
    configure_logging("json", "info", stream=out, redact=KEY)
    emit_personal_data()
    _, invalid, changed, _, _ = lines(out)
    token = changed["old_ip"]
    assert token != changed["ip"]
    # The same address as a key's value and inside free text: one token, correlatable.
    assert f"ip '{token}'" in str(invalid["detail"])


def test_a_different_key_gives_different_hashes(out: io.StringIO) -> None:
    configure_logging("json", "info", stream=out, redact=KEY)
    structlog.get_logger("t").info("x", ip="203.0.113.9")
    configure_logging("json", "info", stream=out, redact=b"other")
    structlog.get_logger("t").info("x", ip="203.0.113.9")
    first, second = lines(out)
    assert first["ip"] != second["ip"]


def test_without_redaction_lines_are_unchanged(out: io.StringIO) -> None:
    configure_logging("json", "info", stream=out)
    emit_personal_data()
    started, invalid, changed, library, _ = lines(out)
    assert started["user_id"] == "alice@example"
    assert changed["ip"] == "203.0.113.9" and changed["nested"] == {"ip": "10.1.2.3"}
    assert "198.51.100.7" in str(invalid["detail"])
    assert library["event"] == "connection to 192.0.2.5:9092 failed"


def test_redaction_is_off_by_default_and_keyed_from_settings() -> None:
    assert redaction_key(load_settings(environ={}).log) is None
    keyed = load_settings(environ={"E911_LOG__REDACT": "true", "E911_LOG__REDACT_KEY": "s3"})
    assert redaction_key(keyed.log) == b"s3"
    random = load_settings(environ={"E911_LOG__REDACT": "true"}).log
    first, second = redaction_key(random), redaction_key(random)
    assert first is not None and len(first) == 32 and first != second


def test_the_start_up_line_says_what_is_starting(out: io.StringIO) -> None:
    configure_logging("json", "info", stream=out)
    settings = load_settings(
        environ={
            "E911_POSTGRES__DSN": "postgresql://svc:hunter2@db/e911d",
            "E911_KAFKA__TOPICS__ALERTS": "my.alerts",
        }
    )
    log_starting(settings, "host-1")
    (line,) = lines(out)
    assert line["event"] == "daemon_starting"
    assert line["version"] == __version__ and line["instance_id"] == "host-1"
    assert line["topics"] == {
        "consumes": ["e911.session-events", "e911.directory-events"],
        "produces": ["my.alerts", "e911.dead-letter"],
    }
    config = line["config"]
    assert isinstance(config, dict)
    assert config["postgres"]["dsn"] == "postgresql://svc:***@db/e911d"
    assert "hunter2" not in out.getvalue()

"""Every log line of the process has one shape, library loggers included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from e911d.daemon.runtime.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("aiokafka", "asyncpg", "apscheduler")}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)
    structlog.reset_defaults()


def test_json_lines_for_our_events_and_library_loggers(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    structlog.get_logger("e911d.test").info(
        "alert_raised", alert_id="a-1", session_id="s-1", account_id="acme", user_id="u"
    )
    logging.getLogger("aiokafka.consumer").warning("Heartbeat failed for group %s", "g1")
    logging.getLogger("asyncpg.pool").info("chatty library info is dropped")
    logging.getLogger("apscheduler.scheduler").warning(
        "Execution of job %s skipped: maximum number of running instances reached (1)", "checks"
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    ours, theirs = lines
    assert ours["event"] == "alert_raised"
    assert ours["level"] == "info"
    assert ours["alert_id"] == "a-1" and ours["session_id"] == "s-1"
    assert ours["timestamp"].endswith("Z")
    assert theirs["event"] == "Heartbeat failed for group g1"
    assert theirs["level"] == "warning"
    assert theirs["logger"] == "aiokafka.consumer"
    assert "timestamp" in theirs


def test_console_renderer_is_readable(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("console", "debug", stream=out)
    structlog.get_logger("e911d.test").debug("session_started", session_id="s-9")
    text = out.getvalue()
    assert "session_started" in text and "session_id=s-9" in text
    assert not text.lstrip().startswith("{")

"""structlog set-up: JSON lines in production, readable on a terminal.

The stdlib loggers of aiokafka, asyncpg and apscheduler go through the same
processors, so every line of the process has one shape. With redaction on, the last
processor before rendering replaces IP addresses and user ids (personal data) with a
keyed hash, in our events and the libraries' alike.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from e911d import __version__
from e911d.config import Settings, masked_settings
from e911d.config.settings import LogSettings

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _SkippedTickFilter(logging.Filter):
    """A tick that finds the previous one still draining is skipped by design
    (max_instances=1: the running one drains everything due); not worth a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


# Keys whose whole value is a user id or an address (or, for a directory notice's
# payload, holds a user id); every other string value is searched for addresses.
HASHED_KEYS = frozenset({"ip", "old_ip", "new_ip", "user_id", "payload"})
# Candidates only: each is confirmed by ipaddress before it is replaced, so a clock
# time (12:30:05) or a version (1.2.3) is left alone.
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]*\d)")


def redaction_key(settings: LogSettings) -> bytes | None:
    """The key redaction hashes with, or None when redaction is off.

    Without a configured key one is drawn for this process: nothing outside it can
    reverse a hash, but a restart changes every hash, so lines correlate across one
    process's life only.
    """
    if not settings.redact:
        return None
    if settings.redact_key is not None:
        return settings.redact_key.get_secret_value().encode("utf-8")
    return os.urandom(32)


class Redactor:
    """A structlog processor: the same value always gets the same ``h:`` token."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"h:{digest[:12]}"

    def _address(self, match: re.Match[str]) -> str:
        try:
            ipaddress.ip_address(match.group(0))
        except ValueError:
            return match.group(0)
        return self.token(match.group(0))

    def text(self, value: str) -> str:
        return _IPV4.sub(self._address, _IPV6.sub(self._address, value))

    def value(self, key: str | None, value: Any) -> Any:
        if isinstance(value, str):
            return self.token(value) if key in HASHED_KEYS else self.text(value)
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, v) for v in value]
        if key in HASHED_KEYS and value is not None and not isinstance(value, bool | int):
            return self.token(str(value))  # an ipaddress object, say
        return value

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            event[key] = self.value(key, event[key])
        return event


def instance_id() -> str:
    """Which process wrote a line: the host (a pod's name on Kubernetes) and the pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def log_starting(settings: Settings, instance: str) -> None:
    """One line that says what is starting, with what: the first thing to read when a
    deployment misbehaves."""
    t = settings.kafka.topics
    structlog.get_logger(__name__).info(
        "daemon_starting",
        version=__version__,
        instance_id=instance,
        topics={
            "consumes": [t.session_events, t.directory_events],
            "produces": [t.alerts, t.dead_letter],
        },
        config=masked_settings(settings),
    )


def configure_logging(
    fmt: str = "auto", level: str = "info", stream: Any = None, redact: bytes | None = None
) -> None:
    stream = stream or sys.stderr
    use_console = fmt == "console" or (
        fmt == "auto" and hasattr(stream, "isatty") and stream.isatty()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    redacting: list[Callable[..., Any]] = [] if redact is None else [Redactor(redact)]
    structlog.configure(
        processors=[
            # First, so that a call below the level (a debug line per session in a
            # batch of thousands) costs one level check, not a timestamp and a dict.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            *redacting,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # Library chatter at INFO (every rebalance step, every job run) drowns our events.
    for noisy in ("aiokafka", "apscheduler", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(_LEVELS[level], logging.WARNING))
    scheduler_logger = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedTickFilter) for f in scheduler_logger.filters):
        scheduler_logger.addFilter(_SkippedTickFilter())

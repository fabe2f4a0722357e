"""structlog set-up: JSON lines in production, readable on a terminal.

The stdlib loggers of aiokafka, asyncpg and apscheduler go through the same
processors, so every line of the process has one shape.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

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


def configure_logging(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
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

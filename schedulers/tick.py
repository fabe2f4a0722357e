"""A steady APScheduler tick, plus housekeeping jobs, in the daemon's event loop.

APScheduler does what it is good at here: a fixed cadence that never overlaps itself
(``max_instances=1``, ``coalesce=True``). The per-session timing lives in
:class:`schedulers.schedule.CheckSchedule`, drained by the tick callback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = structlog.get_logger(__name__)

JobFunc = Callable[[], Awaitable[None]]


class Ticker:
    """Owns one AsyncIOScheduler; every job is a coroutine run at a fixed interval."""

    def __init__(self, on_job_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._scheduler = AsyncIOScheduler(timezone=dt.UTC)
        self._on_job_error = on_job_error
        self._scheduler.add_listener(self._listen, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def every(self, name: str, seconds: float, func: JobFunc, *, start_now: bool = True) -> None:
        first = dt.datetime.now(dt.UTC) if start_now else None
        self._scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=first,
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _listen(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("scheduler_job_missed", job=event.job_id)
            return
        exc = event.exception
        log.error("scheduler_job_failed", job=event.job_id, error=repr(exc))
        if self._on_job_error is not None and exc is not None:
            self._on_job_error(event.job_id, exc)

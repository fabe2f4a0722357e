"""Timing adapter: the per-session due structure and the APScheduler tick that drains it."""

from e911d.schedulers.schedule import CheckSchedule, Due, next_due_after, schedule_anchor
from e911d.schedulers.tick import Ticker

__all__ = ["CheckSchedule", "Due", "Ticker", "next_due_after", "schedule_anchor"]

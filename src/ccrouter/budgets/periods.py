"""Budget periods in UTC: calendar days, ISO weeks (from Monday), calendar months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccrouter.config import BudgetPeriod

__all__ = ["period_bounds"]


def period_bounds(period: BudgetPeriod, now: float) -> tuple[float, float]:
    """(start, end) in unix seconds of the period holding ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return start.timestamp(), end.timestamp()

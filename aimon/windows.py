"""Half-open monitoring windows ``[start, end)``, aligned in a configured timezone.

Bounds are kept as naive UTC datetimes, which is what the warehouse holds
(the data contract: timestamps are UTC). A daily window is one local calendar day, so on a
DST change it is 23 or 25 hours long; an hourly window is one local clock hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from aimon.errors import WindowOpen

Granularity = Literal["daily", "hourly"]
GRANULARITIES: tuple[Granularity, ...] = ("daily", "hourly")
UTC = dt.UTC


@dataclass(frozen=True)
class Window:
    start: dt.datetime  # naive UTC, inclusive
    end: dt.datetime  # naive UTC, exclusive
    granularity: Granularity
    timezone: str = "UTC"

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0

    @property
    def local_start(self) -> dt.datetime:
        return self.start.replace(tzinfo=UTC).astimezone(ZoneInfo(self.timezone))

    @property
    def label(self) -> str:
        local = self.local_start
        if self.granularity == "daily":
            return f"{local:%Y-%m-%d} ({self.timezone})"
        return f"{local:%Y-%m-%d %H:%M} ({self.timezone})"

    def __str__(self) -> str:
        return f"{self.granularity} {self.label} [{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M}) UTC"


def _check(granularity: str) -> Granularity:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
    return granularity  # type: ignore[return-value]


def _to_utc_naive(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def daily_window(day: dt.date, timezone: str = "UTC") -> Window:
    tz = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return Window(_to_utc_naive(start), _to_utc_naive(end), "daily", timezone)


def window_containing(ts: dt.datetime, granularity: str, timezone: str = "UTC") -> Window:
    """The window holding instant ``ts`` (naive means UTC)."""
    g = _check(granularity)
    tz = ZoneInfo(timezone)
    aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    local = aware.astimezone(tz)
    if g == "daily":
        return daily_window(local.date(), timezone)
    # Floor in local time (keeping `fold`, so the repeated hour of a DST fall-back is
    # its own window), then step one real hour.
    start = _to_utc_naive(local.replace(minute=0, second=0, microsecond=0))
    return Window(start, start + dt.timedelta(hours=1), "hourly", timezone)


def phase_of(start: dt.datetime, granularity: str, timezone: str = "UTC") -> int:
    """The seasonal phase of the window starting at `start` (naive UTC): its local
    weekday (daily) or hour (hourly). A seasonal learned baseline compares a window with
    the earlier ones of the same phase (the alert rules, and the report drawing them)."""
    local = start.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return local.weekday() if granularity == "daily" else local.hour


def previous_windows(window: Window, n: int) -> list[Window]:
    """The n windows before `window`, most recent first."""
    out: list[Window] = []
    w = window
    for _ in range(n):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        out.append(w)
    return out


def last_complete_window(granularity: str, timezone: str = "UTC", now: dt.datetime | None = None) -> Window:
    now = now or dt.datetime.now(UTC)
    current = window_containing(now, granularity, timezone)
    return window_containing(current.start - dt.timedelta(microseconds=1), granularity, timezone)


def window_at(
    window_start: str | None, granularity: str, timezone: str = "UTC", now: dt.datetime | None = None
) -> Window:
    """The window holding `window_start` (ISO date or timestamp; a naive value is local
    time in `timezone`), else the last complete one as of `now`. Raises ValueError on a
    value that is not ISO."""
    if window_start is None:
        return last_complete_window(granularity, timezone, now)
    try:
        ts = dt.datetime.fromisoformat(window_start)
    except ValueError:
        raise ValueError(
            f"window start {window_start!r} is not an ISO date or timestamp (e.g. 2026-11-28 or 2026-11-28T14:00)"
        ) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(timezone))
    return window_containing(ts, granularity, timezone)


def _utc_now(now: dt.datetime | None) -> dt.datetime:
    """`now` (default: the clock) as naive UTC, like window bounds."""
    now = now or dt.datetime.now(UTC)
    return now if now.tzinfo is None else _to_utc_naive(now)


def is_open(window: Window, now: dt.datetime | None = None) -> bool:
    """True while the window has not ended: its rows are not all in yet."""
    return window.end > _utc_now(now)


def check_ended(window: Window, *, allow_partial: bool = False, now: dt.datetime | None = None) -> bool:
    """Refuse a window that has not ended (WindowOpen, exit status 2): its figures
    would be a part of the window's, and its run would count as the window's run.

    With `allow_partial`, a window that has begun but not ended passes, as a
    *provisional* one (returns True); a window that has not begun never does."""
    current = _utc_now(now)
    if window.end <= current:
        return False
    clock = f"now is {current:%Y-%m-%d %H:%M} UTC"
    if window.start > current:
        raise WindowOpen(
            f"{window} has not begun ({clock}): nothing to monitor yet; "
            "pick a window that has ended (without --date/--window-start a run takes the last complete one)"
        )
    if allow_partial:
        return True
    raise WindowOpen(
        f"{window} has not ended: it ends at {window.end:%Y-%m-%d %H:%M} UTC ({clock}); run it once it has "
        "ended, or pass --allow-partial (flow parameter allow_partial) to store provisional figures for it"
    )


def is_live(window: Window, now: dt.datetime | None = None) -> bool:
    """True for the last complete window (or a still-open one): its figures are
    current. Older windows are historical: stored, never pushed as current values."""
    latest = last_complete_window(window.granularity, window.timezone, now)
    return window.start >= latest.start


def windows_between(start: dt.date, end: dt.date, granularity: str, timezone: str = "UTC") -> list[Window]:
    """Every window from local date ``start`` up to and including local date ``end``."""
    g = _check(granularity)
    out: list[Window] = []
    day = start
    while day <= end:
        dw = daily_window(day, timezone)
        if g == "daily":
            out.append(dw)
        else:
            w = window_containing(dw.start, "hourly", timezone)
            while w.start < dw.end:
                out.append(w)
                w = window_containing(w.end, "hourly", timezone)
        day += dt.timedelta(days=1)
    return out

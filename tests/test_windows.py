"""Half-open windows aligned in the configured timezone, DST included."""

from __future__ import annotations

import datetime as dt
import itertools

from aimon.config import parse_config
from aimon.tasks.orchestration.run import resolve_window
from aimon.windows import daily_window, last_complete_window, window_containing, windows_between


def test_daily_windows_on_dst_days_are_23_and_25_hours() -> None:
    spring = daily_window(dt.date(2026, 3, 29), "Europe/Berlin")
    autumn = daily_window(dt.date(2026, 10, 25), "Europe/Berlin")
    assert spring.end - spring.start == dt.timedelta(hours=23)
    assert autumn.end - autumn.start == dt.timedelta(hours=25)
    assert spring.start == dt.datetime(2026, 3, 28, 23) and spring.end == dt.datetime(2026, 3, 29, 22)
    assert spring.minutes == 23 * 60


def test_consecutive_windows_tile_time_without_gaps() -> None:
    for tz in ("UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"):
        for g in ("daily", "hourly"):
            ws = windows_between(dt.date(2026, 10, 24), dt.date(2026, 10, 26), g, tz)
            assert all(a.end == b.start for a, b in itertools.pairwise(ws))
    hours = windows_between(dt.date(2026, 10, 25), dt.date(2026, 10, 25), "hourly", "Europe/Berlin")
    assert len(hours) == 25  # the repeated hour of the fall-back is its own window


def test_hourly_windows_align_to_local_hours() -> None:
    w = window_containing(dt.datetime(2026, 11, 10, 10, 50), "hourly", "Asia/Kolkata")  # UTC+05:30
    assert (w.start, w.end) == (dt.datetime(2026, 11, 10, 10, 30), dt.datetime(2026, 11, 10, 11, 30))


def test_last_complete_window() -> None:
    now = dt.datetime(2026, 11, 29, 0, 10, tzinfo=dt.UTC)
    assert last_complete_window("daily", "UTC", now).start == dt.datetime(2026, 11, 28)
    assert last_complete_window("hourly", "UTC", now).start == dt.datetime(2026, 11, 28, 23)
    # 00:10 UTC is still the 28th in New York: the last complete day there is the 27th.
    w = last_complete_window("daily", "America/New_York", now)
    assert w.local_start.date() == dt.date(2026, 11, 27)


def test_resolve_window_reads_naive_times_as_local() -> None:
    cfg = parse_config({"warehouse": {"url": "duckdb:///x"}, "windows": {"timezone": "Europe/Berlin"}})
    w = resolve_window(cfg, "hourly", "2026-11-10T14:20")
    assert w.start == dt.datetime(2026, 11, 10, 13)  # 14:00 CET is 13:00 UTC
    w = resolve_window(cfg, "daily", "2026-11-10")
    assert w.start == dt.datetime(2026, 11, 9, 23)
    assert resolve_window(cfg, "daily", "2026-11-10T12:00+00:00").start == dt.datetime(2026, 11, 9, 23)


def test_only_the_last_complete_window_is_live() -> None:
    from aimon.windows import is_live

    now = dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC)
    assert is_live(daily_window(dt.date(2026, 11, 28)), now)
    assert not is_live(daily_window(dt.date(2026, 11, 27)), now)
    assert is_live(window_containing(dt.datetime(2026, 11, 29, 9), "hourly"), now)
    assert not is_live(window_containing(dt.datetime(2026, 11, 29, 8), "hourly"), now)

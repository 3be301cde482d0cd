"""Scheduled runs: the window of the run's schedule slot, and the missed windows a
scheduled run catches up first."""

from __future__ import annotations

import datetime as dt

from prefect.runtime import flow_run

from aimon.store.metrics import Store
from aimon.windows import Window, window_containing


def scheduled_time() -> dt.datetime:
    """When this flow run was scheduled for (now outside a deployment): a late run
    after an outage takes the window of its schedule slot, not the current one."""
    ts = flow_run.get_scheduled_start_time()
    return dt.datetime.fromtimestamp(ts.timestamp(), dt.UTC)


def catchup_windows(store: Store, window: Window, n: int, now: dt.datetime | None = None) -> list[Window]:
    """The up-to-`n` windows just before `window` that never finished a run and are
    not being run now, oldest first."""
    if n <= 0:
        return []
    before: list[Window] = []
    w = window
    for _ in range(n):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        before.append(w)
    states = store.window_states(sorted(before, key=lambda x: x.start), now)
    return [s.window for s in states if s.latest_status is None and s.claimed_by is None]

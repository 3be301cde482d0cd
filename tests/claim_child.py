"""A claimer for the process-concurrency test, light to import in a spawned process
(no pandas, no Prefect): it only touches the store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aimon.config import parse_config
from aimon.errors import WindowClaimed
from aimon.store.metrics import Store
from aimon.windows import daily_window


def claim(url: str, day: dt.date, i: int, barrier: Any, results: Any) -> None:
    store = Store(parse_config({"warehouse": {"url": url}}))
    barrier.wait()
    try:
        store.start_run(f"proc{i}", daily_window(day), claim_ttl_seconds=600)
        results.put("won")
    except WindowClaimed:
        results.put("claimed")
    except Exception as err:
        results.put(f"error {err!r}")

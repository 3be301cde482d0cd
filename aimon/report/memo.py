"""The bands of the last build, kept beside the site (`assets/bands.json`) so that a
build after one new window (report.after_run) learns the bounds of the new windows
only, not the whole history's again.

A series' band at window t depends only on the series' values, its alert windows and
its n behind the figure at t and before (aimon.report.bands.baseline). So each series
is stored with those inputs: the next build compares them window by window, keeps
the stored band before the first window that differs, and learns from there on. A
changed rule, time zone, granularity or memo layout drops the series' memo. A memo
that cannot be read is ignored (the build learns everything, as without one).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

MEMO = "assets/bands.json"
LAYOUT = 1  # raise when what a band depends on changes

Inputs = dict[str, list[Any]]  # window start ISO -> [value, n behind it, alert window]
Band = dict[dt.datetime, tuple[float, float]]


def read(out: Path) -> dict[str, Any]:
    try:
        memo = json.loads((out / MEMO).read_text())
    except (OSError, ValueError):
        return {}
    return memo.get("series", {}) if isinstance(memo, dict) and memo.get("layout") == LAYOUT else {}


def dumps(series: dict[str, Any]) -> str:
    return json.dumps({"layout": LAYOUT, "series": series}, allow_nan=False, separators=(",", ":"))


def clean(v: float | None) -> float | None:
    """JSON has no NaN: a NaN input is stored as null."""
    return None if v is None or math.isnan(v) else float(v)


def reuse(old: dict[str, Any] | None, fingerprint: str, inputs: Inputs) -> Band:
    """The stored band's windows before the first whose inputs differ."""
    if not old or old.get("rule") != fingerprint:
        return {}
    before = old.get("inputs", {})
    first = min((k for k in inputs.keys() | before.keys() if inputs.get(k) != before.get(k)), default=None)
    return {
        dt.datetime.fromisoformat(k): (float(c), float(b))
        for k, (c, b) in old.get("band", {}).items()
        if first is None or k < first
    }


def _num(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)  # "inf", "-inf", "nan": float() reads them back


def entry(fingerprint: str, inputs: Inputs, band: Band) -> dict[str, Any]:
    stored = {s.isoformat(): [_num(c), _num(b)] for s, (c, b) in band.items()}
    return {"rule": fingerprint, "inputs": inputs, "band": stored}

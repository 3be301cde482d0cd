"""What the likely-causes explainers share (aimon.tasks.alerts.causes): the figure
cache of a window, the context of one alert, and the helpers that turn a change into
ranked parts and lines."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aimon.config.alerts import AlertRule
from aimon.records import ALL
from aimon.store.metrics import Store
from aimon.windows import Window

TOP = 3  # lines per notification item
MIN_SHARE = 0.05  # parts carrying less of the change are left out
COVER = 0.8  # a line lists parts until they carry this much (at most 3 parts)
DEFAULT_WINDOWS = 7  # baseline windows of a rule without a baseline
ADDITIVE = ("llm_errors", "llm_cost_usd", "llm_tokens", "llm_requests", "llm_unpriced_requests")
WHAT = {
    "llm_errors": "the extra errors",
    "llm_error_rate": "the extra errors",
    "llm_cost_usd": "the extra spend",
    "llm_tokens": "the extra tokens",
    "llm_requests": "the extra requests",
    "llm_unpriced_requests": "the extra unpriced requests",
}
# Breakdown dimensions, tried in this order (the order also breaks ties in the ranking).
GROUPS = ("model", "endpoint")

Series = tuple[tuple[str, str], ...]  # sorted label items
ByWindow = dict[dt.datetime, dict[Series, float]]


def series_key(labels: Mapping[str, str]) -> Series:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


@dataclass(frozen=True)
class Part:
    """One part of a breakdown: 'gpt-4o on /chat' carrying `share` of the change."""

    name: str
    share: float


@dataclass(frozen=True)
class Cause:
    """One line of a notification's likely causes. `parts` is empty for a context line
    (a score against its threshold, what other models did, drift in the same window)."""

    kind: str  # model/endpoint, error_type, token_type, traffic, hour, sibling, tokens, drift, score
    text: str
    parts: tuple[Part, ...] = ()
    weight: float = 0.0  # ranking: the top part's share; context lines below every share line


@dataclass
class FigureCache:
    """The stored figures of one alert window and the windows before it, read once per
    metric and granularity for every alert of the window (`likely_causes(cache=...)`)."""

    store: Store
    window: Window
    _data: dict[tuple[str, str], tuple[dt.datetime, ByWindow]] = field(default_factory=dict)

    def get(self, metric: str, start: dt.datetime, granularity: str | None = None) -> ByWindow:
        """Figures of `metric` in windows starting in [start, window.end), by window start."""
        gran = granularity or self.window.granularity
        have = self._data.get((metric, gran))
        if have is not None and have[0] <= start:
            return have[1]
        out: ByWindow = {}
        for f in self.store.figures(granularity=gran, metric=metric, start_from=start, before=self.window.end):
            out.setdefault(f.window_start, {})[series_key(f.labels)] = f.value
        self._data[(metric, gran)] = (start, out)
        return out


@dataclass(frozen=True)
class Ctx:
    cache: FigureCache
    window: Window
    rule: AlertRule
    labels: dict[str, str]
    base: list[dt.datetime]  # baseline window starts, most recent first
    first: dt.datetime  # the earliest start to read

    @property
    def upward(self) -> bool:
        return self.rule.upward

    def now(self, metric: str) -> dict[Series, float]:
        return self.cache.get(metric, self.first).get(self.window.start, {})

    def past(self, metric: str) -> list[dict[Series, float]]:
        """The metric's figures in each baseline window that holds any figure of it."""
        data = self.cache.get(metric, self.first)
        return [data[s] for s in self.base if s in data]

    def hourly(self, metric: str) -> dict[dt.datetime, dict[Series, float]]:
        if self.window.granularity != "daily":
            return {}
        return self.cache.get(metric, self.window.start, "hourly")


# -- shares -------------------------------------------------------------------------------


def share_parts(extras: Mapping[str, float], upward: bool) -> list[Part]:
    """Each name's share of the change in the alert's direction, largest first."""
    signed = {k: (v if upward else -v) for k, v in extras.items()}
    total = sum(v for v in signed.values() if v > 0)
    if total <= 0:
        return []
    parts = [Part(k, v / total) for k, v in signed.items() if v > 0]
    return sorted(parts, key=lambda p: (-p.share, p.name))


def largest_parts(parts: list[Part], most: int) -> list[Part]:
    """The largest parts (sorted largest first) until they carry COVER of the change: at
    most `most`, none under MIN_SHARE."""
    kept: list[Part] = []
    for p in parts:
        if p.share < MIN_SHARE or len(kept) == most:
            break
        kept.append(p)
        if sum(k.share for k in kept) >= COVER:
            break
    return kept


def cause_line(
    kind: str, parts: list[Part], what: str, name: Callable[[str], str] = str, rest: Callable[[str], str] | None = None
) -> Cause | None:
    """'gpt-4o on /chat: 82% of the extra errors; claude on /chat: 12%': the largest parts
    until they carry COVER of the change (at most 3, none under MIN_SHARE). `rest` names
    the parts after the first (default: like the first)."""
    kept = largest_parts(parts, 3)
    if not kept:
        return None
    first, *others = kept
    text = f"{name(first.name)}: {first.share:.0%} of {what}" + "".join(
        f"; {(rest or name)(p.name)}: {p.share:.0%}" for p in others
    )
    return Cause(kind, text, tuple(kept), first.share)


def pct_change(new: float, old: float) -> str:
    if old == 0:
        return "new" if new else "+0%"
    return f"{new / old - 1:+.0%}"


# -- series -------------------------------------------------------------------------------


def with_label(labels: Mapping[str, str], **kw: str) -> Series:
    return series_key({**labels, **kw})


def children_of(labels: Mapping[str, str], figures: Sequence[Mapping[Series, float]]) -> tuple[str, list[Series]]:
    """The finer series of `labels` along model/endpoint: those keys where `labels` has
    __all__ take a concrete value, every other label equal. ('', []) if none varies."""
    free = [g for g in GROUPS if labels.get(g) == ALL]
    if not free:
        return "", []
    fixed = {k: v for k, v in labels.items() if k not in free}
    found: set[Series] = set()
    for fig in figures:
        for s in fig:
            d = dict(s)
            if set(d) != set(labels) or any(d.get(k) != v for k, v in fixed.items()):
                continue
            if all(d.get(g) not in (None, ALL) for g in free):
                found.add(s)
    return "/".join(free), sorted(found)


def name_of(s: Series, keys: Sequence[str]) -> str:
    d = dict(s)
    if "model" in keys and "endpoint" in keys:
        return f"{d['model']} on {endpoint_text(d['endpoint'])}"
    if keys == ["endpoint"]:
        return endpoint_text(d["endpoint"])
    return ", ".join(f"{d[k]}" for k in keys)


def endpoint_text(e: str) -> str:
    return e if e.startswith("/") else f"/{e}"


def mean_past(past: Sequence[Mapping[Series, float]], s: Series) -> float:
    """Mean over the baseline windows of an additive series (absent in a window = 0)."""
    return sum(p.get(s, 0.0) for p in past) / len(past) if past else 0.0


def median_past(past: Sequence[Mapping[Series, float]], s: Series) -> float | None:
    vals = [p[s] for p in past if s in p and p[s] == p[s]]
    return float(statistics.median(vals)) if vals else None


def hour_cause(extras: Mapping[dt.datetime, float], upward: bool, what: str) -> Cause | None:
    """Hours carrying the change, grouped into runs of consecutive hours:
    'hours 14:00-16:00 UTC: 85% of the extra errors'."""
    parts = share_parts({h.isoformat(): v for h, v in extras.items()}, upward)
    kept = largest_parts(parts, 6)
    if not kept:
        return None
    starts = sorted(dt.datetime.fromisoformat(p.name) for p in kept)
    runs: list[list[dt.datetime]] = []
    for h in starts:
        if runs and h - runs[-1][-1] == dt.timedelta(hours=1):
            runs[-1].append(h)
        else:
            runs.append([h])
    spans = ", ".join(f"{r[0]:%H:%M}-{r[-1] + dt.timedelta(hours=1):%H:%M}" for r in runs)
    share = sum(p.share for p in kept)
    word = "hour" if len(kept) == 1 else "hours"
    return Cause("hour", f"{word} {spans} UTC: {share:.0%} of {what}", tuple(kept), share)

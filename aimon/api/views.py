"""What the Python API's answers look like: the A/B view, the drift frame, and the small
helpers the frames share (aware UTC timestamps, argument checks). No store access here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from aimon.windows import Window

if TYPE_CHECKING:
    from aimon.store.metrics import StoredFigure
    from aimon.tasks.abtest.results import ExperimentResult

EFFECT_METHODS = ("wasserstein", "jensenshannon")  # drift's effect sizes (tasks/drift/calculate.py)


def utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    # The store holds naive UTC (SQLite hands back strings): make them aware, UTC.
    for c in columns:
        frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601")
    return frame


def choice(value: str | None, valid: Iterable[str], what: str) -> str | None:
    if value is not None and value not in valid:
        raise ValueError(f"{what} {value!r}: use one of {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class ExperimentView:
    """An experiment as of its latest analysed window: `result` is the analyzer's own
    ExperimentResult (aimon.tasks.abtest.results), rebuilt from the stored A/B
    statistics; `to_frame()` gives one row per variant and metric."""

    window: Window
    result: ExperimentResult

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def srm_p_value(self) -> float | None:
        return self.result.srm.p_value if self.result.srm else None

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {
                "variant": c.variant,
                "metric": c.metric,
                "mean_control": c.mean_control,
                "mean_variant": c.mean_variant,
                "lift": c.lift,
                "lift_ci_low": c.lift_ci[0] if c.lift_ci else None,
                "lift_ci_high": c.lift_ci[1] if c.lift_ci else None,
                "p_value": c.p_value,
                "p_adjusted": c.p_adjusted,
                "status": c.status,
                "n_control": c.n_control,
                "n_variant": c.n_variant,
                "method": c.method,
            }
            for c in self.result.comparisons
        ]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        r = self.result
        srm = f", SRM p = {self.srm_p_value:.3g}" if self.srm_p_value is not None else ""
        return f"experiment {r.name} at {self.window}: {r.status} after {r.looks} windows, {r.total_units:,} units{srm}"


def _score_methods(scores: Mapping[str, float], test: str | None) -> tuple[str | None, str | None]:
    """(the score's method, the effect size's method) of a feature's data_drift_score rows.
    A feature stores its score and, when the score is not itself the effect size, the
    effect (wasserstein or jensenshannon) as a second row (tasks/drift/records.py). Of two
    rows the score is the p-value test's statistic when it is one, else the non-effect."""
    if len(scores) <= 1:
        only = next(iter(scores), None)
        return only, only
    if test in scores:
        return test, next(m for m in scores if m != test)
    effect = next((m for m in EFFECT_METHODS if m in scores), None)
    return next(m for m in scores if m != effect), effect


def drift_frame(w: Window, found: list[StoredFigure]) -> pd.DataFrame:
    by: dict[str, dict[str, Any]] = {}
    scores: dict[str, dict[str, float]] = {}
    for f in found:
        row = by.setdefault(f.labels["feature"], {"feature": f.labels["feature"]})
        if f.metric == "data_drift_score":
            scores.setdefault(row["feature"], {})[f.labels["method"]] = f.value
        elif f.metric == "data_drift_p_value":
            row["test_method"], row["p_value"] = f.labels["method"], f.value
        elif f.metric == "data_drift_p_value_adjusted":
            row["p_value_adjusted"] = f.value
        else:
            row["detected"] = bool(f.value)
    rows = []
    for feature, row in by.items():
        method, effect = _score_methods(scores.get(feature, {}), row.get("test_method"))
        s = scores.get(feature, {})
        rows.append(
            {
                "window_start": w.start,
                "window_end": w.end,
                "granularity": w.granularity,
                **row,
                "method": method,
                "score": s.get(method) if method else None,
                "effect_method": effect,
                "effect": s.get(effect) if effect else None,
            }
        )
    cols = ["window_start", "window_end", "granularity", "feature", "method", "score", "effect_method", "effect"]
    cols += ["test_method", "p_value", "p_value_adjusted", "detected"]
    frame = pd.DataFrame(rows, columns=cols).sort_values("feature", ignore_index=True)
    return utc(frame, "window_start", "window_end")

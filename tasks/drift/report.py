"""The optional Evidently HTML report (drift.html_report), and the frame it is built from.

Evidently is imported only when a report is asked for: it costs seconds to import,
and the analyzer's own figures never depend on it.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aimon.env import aimon_home
from aimon.tasks.contract import valid_rows
from aimon.tasks.drift.features import FeatureSpec, _categorical, _drift_ix, _numeric_expr
from aimon.tasks.drift.fit import reference_windows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.warehouse import Interactions, window_params
from aimon.windows import Window


def drift_frame(
    ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], bounds: list[Window], cap: int | None = None
) -> Any:
    """The drift features of the windows `bounds` as one pandas frame, one column per
    feature, valued as the analyzer sees them (a categorical feature's rows outside its
    own filter, e.g. error_type on successful requests, are null): what Evidently, or a
    notebook, would be handed. A seeded sample of `cap` rows when there are more."""
    ix = _drift_ix(ix, specs, ctx.cfg)
    cols = []
    for s in specs:
        if s.kind == "numerical":
            cols.append(sa.cast(_numeric_expr(ix, s), sa.Double).label(s.name))
        else:
            expr, extra = _categorical(ix, s)
            cols.append((sa.case((sa.and_(*extra), expr), else_=None) if extra else expr).label(s.name))
    parts = [
        ctx.warehouse.fetch_arrow(
            sa.select(*cols).select_from(ix.table).where(ix.in_window(), valid_rows(ix)), window_params(w)
        ).to_pandas()
        for w in bounds
    ]
    df = pd.concat(parts, ignore_index=True)
    return df.sample(n=cap, random_state=0) if cap is not None and len(df) > cap else df


def save_html_report(ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], cap: int = 100_000) -> Any:
    """Evidently's DataDriftPreset on (up to `cap` rows of) the reference and the window.
    Slow by design (it re-reads raw reference rows): off unless drift.html_report."""
    with warnings.catch_warnings():
        # evidently's import chain (numpy.core, litestar) warns about itself; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        # lazy: evidently costs ~7 s to import, and only this optional report uses it
        from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
        from evidently.presets import DataDriftPreset  # noqa: PLC0415

    ref = drift_frame(ctx, ix, specs, reference_windows(ctx.cfg, ctx.window), cap)
    cur = drift_frame(ctx, ix, specs, [ctx.window], cap)
    definition = DataDefinition(
        numerical_columns=[s.name for s in specs if s.kind == "numerical"],
        categorical_columns=[s.name for s in specs if s.kind == "categorical"],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    out = aimon_home() / "reports" / f"drift-{ctx.window.granularity}-{ctx.window.start:%Y%m%dT%H%M}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))
    return out

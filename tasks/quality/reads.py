"""Shared window reads: the segment columns every family groups by (model, and
experiment and variant when `quality.by_variant`), the per-segment row masks over a
read frame, and a frame fetch. Kept apart so each family reads segments the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.records import ALL
from aimon.tasks.orchestration.context import AnalysisContext

# -- segments: per model, all models, and per experiment variant --------------------


def segment_columns(ctx: AnalysisContext) -> list[sa.ColumnElement[Any]]:
    ix = ctx.interactions
    cols: list[sa.ColumnElement[Any]] = [sa.cast(ix.req("model"), sa.String).label("g_model")]
    exp, var = ix.col("experiment"), ix.col("variant")
    if ctx.cfg.quality.by_variant and exp is not None and var is not None:
        cols += [sa.cast(exp, sa.String).label("g_experiment"), sa.cast(var, sa.String).label("g_variant")]
    return cols


def segments(df: pd.DataFrame) -> Iterator[tuple[dict[str, str], np.ndarray]]:
    """(labels, boolean row mask): each model, every model (``__all__``), and each
    (experiment, variant) over all models when those columns were read."""
    models = df["g_model"].astype(str).to_numpy() if len(df) else np.array([], dtype=str)
    for m in sorted(set(models)):
        yield {"model": m}, models == m
    yield {"model": ALL}, np.ones(len(df), dtype=bool)
    if "g_experiment" in df.columns and len(df):
        exp, var = df["g_experiment"], df["g_variant"]
        known = (exp.notna() & var.notna()).to_numpy()
        pairs = sorted({(str(e), str(v)) for e, v in zip(exp[known], var[known], strict=True)})
        e_arr, v_arr = exp.astype(str).to_numpy(), var.astype(str).to_numpy()
        for e, v in pairs:
            yield {"model": ALL, "experiment": e, "variant": v}, known & (e_arr == e) & (v_arr == v)


def fetch_frame(ctx: AnalysisContext, stmt: sa.Select[Any]) -> pd.DataFrame:
    return pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=[c.key for c in stmt.selected_columns])

"""An independent pandas/numpy computation of the operational and cost figures.

Written from the data contract (docs/warehouse.md), row by row where that is clearer, and
sharing no code with tasks/: the figures aimon stores must equal these.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd

ALL = "__all__"
ERRORS = {"rate_limit_exceeded", "invalid_request", "timeout", "content_filter", "model_not_found", "server_error"}


def key(metric: str, /, **labels: Any) -> tuple[str, str]:
    return metric, json.dumps({k: str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def in_window(df: pd.DataFrame, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    ts = df["timestamp"]
    return df[ts.notna() & (ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]


def accepted(df: pd.DataFrame) -> pd.DataFrame:
    ok = df["model"].notna() & df["status"].notna()
    for c in ("latency_seconds", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd"):
        # pandas holds a missing number as NaN, so NaN here is a null (accepted); +-inf and
        # a value that is no number (text) are rejected.
        x = pd.to_numeric(df[c], errors="coerce").astype("float64")
        ok &= ~(df[c].notna() & ((x < 0) | np.isinf(x) | x.isna())).fillna(False).astype(bool)
    ok &= ~(
        df["cached_input_tokens"].notna()
        & df["input_tokens"].notna()
        & (df["cached_input_tokens"] > df["input_tokens"])
    ).fillna(False).astype(bool)
    return df[ok]


def status_class(s: str) -> str:
    s = s.strip().lower()
    return s if s == "ok" or s in ERRORS else "other"


def groups(df: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(model, endpoint, rows) at the three roll-up levels."""
    df = df.assign(endpoint=df["endpoint"].fillna("unknown"))
    out = [(m, e, g) for (m, e), g in df.groupby(["model", "endpoint"])]
    out += [(m, ALL, g) for m, g in df.groupby("model")]
    out.append((ALL, ALL, df))
    return out


def operational(df: pd.DataFrame, start: dt.datetime, end: dt.datetime) -> dict[tuple[str, str], float]:
    rows = accepted(in_window(df, start, end))
    rows = rows.assign(cls=rows["status"].map(status_class))
    minutes = (end - start).total_seconds() / 60
    want: dict[tuple[str, str], float] = {}
    for m, e, g in groups(rows):
        n = len(g)
        errs = int((g["cls"] != "ok").sum())
        want[key("llm_requests", model=m, endpoint=e)] = n
        want[key("llm_requests_per_minute", model=m, endpoint=e)] = n / minutes
        want[key("llm_errors", model=m, endpoint=e, error_type=ALL)] = errs
        if n:
            want[key("llm_error_rate", model=m, endpoint=e)] = errs / n
        for etype, cnt in g.loc[g["cls"] != "ok", "cls"].value_counts().items():
            want[key("llm_errors", model=m, endpoint=e, error_type=etype)] = cnt
        lat = g["latency_seconds"].dropna().to_numpy(dtype=float)
        if len(lat):
            for q in (0.5, 0.95, 0.99):
                want[key("llm_latency_seconds", model=m, endpoint=e, quantile=q)] = float(
                    np.quantile(lat, q, method="linear")
                )
    if not len(rows):
        want[key("llm_requests", model=ALL, endpoint=ALL)] = 0
        want[key("llm_requests_per_minute", model=ALL, endpoint=ALL)] = 0
        want[key("llm_errors", model=ALL, endpoint=ALL, error_type=ALL)] = 0
    return want


def row_cost(row: pd.Series, pricing: list[dict[str, Any]], reprice: bool) -> float | None:
    """The cost of one request, or None when it cannot be priced."""
    if not reprice and pd.notna(row.get("cost_usd")):
        return float(row["cost_usd"])
    entries = [
        p for p in pricing if p["model"] == row["model"] and pd.Timestamp(p["effective_from"]) <= row["timestamp"]
    ]
    inp, out = row.get("input_tokens"), row.get("output_tokens")
    if not entries or (pd.isna(inp) and pd.isna(out)):
        return None
    p = max(entries, key=lambda e: pd.Timestamp(e["effective_from"]))
    inp = 0 if pd.isna(inp) else int(inp)
    out = 0 if pd.isna(out) else int(out)
    cached = row.get("cached_input_tokens")
    cached = 0 if pd.isna(cached) else int(cached)
    cached_rate = p.get("cached_input_per_1m", p["input_per_1m"])
    return ((inp - cached) * p["input_per_1m"] + cached * cached_rate + out * p["output_per_1m"]) / 1e6


def cost(
    df: pd.DataFrame, start: dt.datetime, end: dt.datetime, pricing: list[dict[str, Any]], reprice: bool = False
) -> dict[tuple[str, str], float]:
    rows = accepted(in_window(df, start, end))
    costs = [row_cost(r, pricing, reprice) for _, r in rows.iterrows()]
    rows = rows.assign(cost=[c if c is not None else 0.0 for c in costs], unpriced=[c is None for c in costs])
    want: dict[tuple[str, str], float] = {}
    for m, e, g in groups(rows):
        want[key("llm_cost_usd", model=m, endpoint=e)] = float(g["cost"].sum())
        for col, typ in (
            ("input_tokens", "input"),
            ("output_tokens", "output"),
            ("cached_input_tokens", "cached_input"),
        ):
            want[key("llm_tokens", model=m, endpoint=e, type=typ)] = float(g[col].sum())
        if e == ALL:
            want[key("llm_unpriced_requests", model=m)] = int(g["unpriced"].sum())
    return want


def compare(got: dict[tuple[str, str], float], want: dict[tuple[str, str], float], rel: float = 1e-9) -> None:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing, f"figures missing: {missing[:10]}"
    assert not extra, f"unexpected figures: {extra[:10]}"
    bad = [(k, got[k], want[k]) for k in want if not np.isclose(got[k], want[k], rtol=rel, atol=1e-9)]
    assert not bad, f"{len(bad)} figures differ, e.g. {bad[:5]}"

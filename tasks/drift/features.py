"""The drift features: which columns the analyzer compares, and how each is read.

The built-in features (latency, tokens, model, endpoint, error type) plus the ones
`drift.features` declares, as FeatureSpecs, and the SQL expression of each over the
interactions table. Every other drift module (the reads, the reference fit, the
verdict, the HTML report) works from these specs, so they live below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.errors import ContractError
from aimon.stats import stattests as st
from aimon.tasks.orchestration.context import endpoint_expr, status_class_expr
from aimon.warehouse import Interactions

BUILTIN_NUMERICAL = ("latency_seconds", "input_tokens", "output_tokens")
BUILTIN_CATEGORICAL = ("model", "endpoint", "error_type")
THREADS = 2  # per-column sorts release the GIL; this machine class has 2 cores


@dataclass(frozen=True)
class FeatureSpec:
    name: str  # the `feature` label
    kind: st.Kind
    method: str | None = None
    threshold: float | None = None
    builtin: bool = False


def feature_specs(cfg: Config, ix: Interactions) -> tuple[list[FeatureSpec], list[str]]:
    dcfg = cfg.drift
    specs: list[FeatureSpec] = []
    notes: list[str] = []
    if dcfg.builtins:
        specs += [FeatureSpec(c, "numerical", builtin=True) for c in BUILTIN_NUMERICAL if ix.has(c)]
        specs += [FeatureSpec("model", "categorical", builtin=True)]
        if ix.has("endpoint"):
            specs.append(FeatureSpec("endpoint", "categorical", builtin=True))
        specs.append(FeatureSpec("error_type", "categorical", builtin=True))
    taken = {s.name for s in specs}
    for i, f in enumerate(dcfg.features):
        if f.name not in ix.all_columns:
            raise ContractError(
                f"drift.features[{i}]: column {f.name!r} not in table {ix.table.name!r} "
                f"(it has: {', '.join(ix.all_columns)})"
            )
        if f.name in taken:  # a built-in configured explicitly: the config's settings win
            specs = [s for s in specs if s.name != f.name]
        specs.append(FeatureSpec(f.name, f.type, f.method, f.threshold))
    return specs, notes


def _drift_ix(ix: Interactions, specs: list[FeatureSpec], cfg: Config) -> Interactions:
    """The interactions table clause with the feature columns added (same name, one FROM)."""
    extra = [s.name for s in specs if not s.builtin and s.name not in ix.present.values()]
    emb = cfg.drift.embeddings
    if emb is not None and emb.column not in ix.present and emb.column in ix.all_columns:
        extra.append(emb.column)
    cols = list(dict.fromkeys([*ix.present.values(), *extra]))
    tc = sa.table(ix.table.name, *[sa.column(c) for c in cols], schema=ix.table.schema)
    return Interactions(tc, ix.present, ix.all_columns)


def _numeric_expr(ix: Interactions, spec: FeatureSpec) -> sa.ColumnElement[Any]:
    col = ix.col(spec.name) if spec.builtin else ix.table.c[spec.name]
    assert col is not None
    return col


def _categorical(ix: Interactions, spec: FeatureSpec) -> tuple[sa.ColumnElement[Any], list[Any]]:
    if spec.name == "model" and spec.builtin:
        return sa.cast(ix.req("model"), sa.String), []
    if spec.name == "endpoint" and spec.builtin:
        return endpoint_expr(ix), []
    if spec.name == "error_type" and spec.builtin:
        status = status_class_expr(ix)
        return status, [status != sa.literal_column("'ok'")]
    return sa.cast(ix.table.c[spec.name], sa.String), []


def _embedding_col(ix: Interactions, cfg: Config) -> sa.ColumnElement[Any] | None:
    e = cfg.drift.embeddings
    if e is None:
        return None
    if e.column in ix.present:
        return ix.col(e.column)
    if e.column in ix.all_columns:
        return ix.table.c[e.column]
    return None

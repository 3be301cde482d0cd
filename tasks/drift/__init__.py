"""The drift analyzer: the current window against the reference, feature by feature,
plus embedding drift, and a dataset verdict.

Per feature, two numbers decide (the p-value alone never does, or on a million rows
every feature would drift):
- a test's p-value (KS for numbers, chi-square or z for categories), corrected with
  Benjamini-Hochberg across the features, below `drift.p_value`;
- an effect size (normalised Wasserstein for numbers, Jensen-Shannon distance for
  categories) at or above its floor (`drift.effect_floors`).
The method reported as the feature's score is chosen by Evidently's rules (reference
of at most `small_sample` rows: KS / chi-square / z; more: Wasserstein / Jensen-Shannon;
numbers with at most 5 values count as categories), or set per feature in the config;
a distance method's own threshold must be passed too.

Reference statistics come from tasks/drift_cache.py (computed once per reference
window, stored, reused); the current window is read once, as Arrow, only the needed
columns, and its statistics are stored for the runs that will use it as reference.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from aimon.config import Config, DriftConfig, EmbeddingDriftConfig
from aimon.errors import ContractError
from aimon.records import AnalyzerResult, MetricRecord
from aimon.stats import embedding as ed
from aimon.stats import stattests as st
from aimon.store.reference import ReferenceCache, WindowStats, config_hash, entry_key
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, status_class_expr
from aimon.tasks.orchestration.segments import describe_segments, map_segments, run_calls, segment_bounds, segmented
from aimon.warehouse import Interactions, window_params
from aimon.windows import Window, window_containing

BUILTIN_NUMERICAL = ("latency_seconds", "input_tokens", "output_tokens")
BUILTIN_CATEGORICAL = ("model", "endpoint", "error_type")
THREADS = 2  # per-column sorts release the GIL; this machine class has 2 cores
# Current columns longer than this are compared through a sketch of this many points
# (CDF error <= 1e-6, far below the sampling noise of 1/sqrt(n)), so a 10M-row window
# holds 16 MB per feature instead of 80 MB; smaller windows are compared exactly.
CURRENT_EXACT_MAX = 1_000_000
# Embeddings: above SQL_SAMPLE_FACTOR x embeddings.cap rows, a hash pre-sample in the
# warehouse (expected SQL_SAMPLE_FACTOR x cap rows; fewer than cap with probability
# ~1e-200 at factor 4) is read instead of the whole column, then subsampled as before.
SQL_SAMPLE_FACTOR = 4
HASH_BUCKETS = 1 << 20


@dataclass(frozen=True)
class FeatureSpec:
    name: str  # the `feature` label
    kind: st.Kind
    method: str | None = None
    threshold: float | None = None
    builtin: bool = False


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict, with everything that produced it."""

    feature: str
    kind: st.Kind
    method: str  # the score's method
    statistic: float
    threshold: float  # of `method`: alpha for a test, the distance threshold otherwise
    test_method: str  # the p-value test behind the verdict
    p_value: float
    p_value_adjusted: float  # Benjamini-Hochberg across the window's features
    alpha: float
    effect_method: str
    effect: float
    effect_floor: float
    detected: bool
    n_reference: int
    n_current: int

    def explain(self) -> str:
        stat = f"{self.method} {self.statistic:.4g}"
        if self.method != self.effect_method:
            stat += f", {self.effect_method} {self.effect:.3g} (floor {self.effect_floor:g})"
        elif self.method != self.test_method:
            stat += f" (threshold {self.threshold:g})"
        return (
            f"{self.feature} ({stat}; {self.test_method} p={self.p_value_adjusted:.2g} after BH < {self.alpha:g}; "
            f"{self.n_reference:,} reference vs {self.n_current:,} current rows)"
        )


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    share: float
    dataset_drift: bool
    dataset_share: float
    embeddings: tuple[ed.EmbeddingTestResult, ...] = ()
    embedding_drift: bool | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.detected)


# -- comparing statistics (pure: used by the analyzer, the tests and the calibration) --


def _values(ref: st.NumericSample, cur: st.NumericSample) -> int:
    """Distinct values over both sides, counted up to 6 (Evidently's 5-value rule)."""
    if ref.distinct is None or cur.distinct is None:
        return 6
    return len(set(ref.distinct.keys) | set(cur.distinct.keys))


def choose_methods(spec: FeatureSpec, n_ref: int, n_values: int, small_sample: int) -> tuple[str, str, str]:
    """(score method, p-value test, effect measure) for a feature."""
    discrete = spec.kind == "categorical" or n_values <= 5
    test = ("chisquare" if n_values > 2 else "z") if discrete else "ks"
    effect = "jensenshannon" if discrete else "wasserstein"
    if spec.method is not None:
        return spec.method, (spec.method if st.get_stattest(spec.method).p_value else test), effect
    method = test if n_ref <= small_sample else effect
    return method, test, effect


def compare(reference: WindowStats, current: WindowStats, specs: list[FeatureSpec], dcfg: DriftConfig) -> DriftReport:
    """Every feature's test and effect, BH across features, the dataset verdict."""
    jobs: list[tuple[FeatureSpec, Any, Any, str, str, str]] = []
    notes: list[str] = []
    for spec in specs:
        if spec.kind == "numerical":
            ref_s: Any = reference.numeric.get(spec.name)
            cur_s: Any = current.numeric.get(spec.name)
        else:
            ref_s, cur_s = reference.categorical.get(spec.name), current.categorical.get(spec.name)
        empty = [side for side, s in (("reference", ref_s), ("current window", cur_s)) if s is None or s.n == 0]
        if empty:
            notes.append(f"drift: {spec.name} skipped, no values in the {' or '.join(empty)}")
            continue
        n_values = _values(ref_s, cur_s) if spec.kind == "numerical" else len(set(ref_s.keys) | set(cur_s.keys))
        method, test, effect = choose_methods(spec, ref_s.n, n_values, dcfg.small_sample)
        jobs.append((spec, ref_s, cur_s, method, test, effect))

    def run(job: tuple[FeatureSpec, Any, Any, str, str, str]) -> dict[str, Any]:
        try:
            return _run_feature(*job, dcfg)
        except ValueError as err:
            raise ValueError(f"drift.features {job[0].name!r}, method {job[3]!r}: {err}") from None

    # numpy's searches, cumsums and sorts release the GIL: features run side by side.
    with ThreadPoolExecutor(THREADS) as pool:
        rows = list(pool.map(run, jobs))
    adjusted = st.benjamini_hochberg([r["test"].p_value for r in rows])
    out = []
    for r, p_adj in zip(rows, adjusted, strict=True):
        spec, primary, test_r, effect_r = r["spec"], r["primary"], r["test"], r["effect"]
        alpha = primary.threshold if primary.uses_p_value else dcfg.p_value
        floor = dcfg.effect_floors.numerical if effect_r.method == "wasserstein" else dcfg.effect_floors.categorical
        detected = bool(p_adj < alpha and effect_r.statistic >= floor and (primary.uses_p_value or primary.drifted))
        out.append(
            FeatureDrift(
                spec.name,
                spec.kind,
                primary.method,
                primary.statistic,
                primary.threshold,
                test_r.method,
                float(test_r.p_value),
                float(p_adj),
                alpha,
                effect_r.method,
                effect_r.statistic,
                floor,
                detected,
                primary.n_reference,
                primary.n_current,
            )
        )
    share = sum(f.detected for f in out) / len(out) if out else 0.0
    return DriftReport(
        tuple(out), share, bool(out) and share >= dcfg.dataset_share, dcfg.dataset_share, notes=tuple(notes)
    )


def _run_feature(
    spec: FeatureSpec, ref: Any, cur: Any, method: str, test: str, effect: str, dcfg: DriftConfig
) -> dict[str, Any]:
    def threshold(name: str) -> float:
        if name == method and spec.threshold is not None:
            return spec.threshold
        t = st.get_stattest(name)
        return dcfg.p_value if t.p_value else t.default_threshold

    fast: dict[str, tuple[float, float | None]] = {}
    if isinstance(ref, st.NumericSample) and {"ks", "wasserstein"} <= {method, test, effect}:
        # The hot path: KS and Wasserstein from one merge of the sorted samples.
        d, w = st.ks_and_wasserstein(ref, cur)
        pair = (ref.values, cur.values) if ref.exact and cur.exact else None
        fast = {"ks": (d, st.ks_p_value(d, ref.n, cur.n, pair)), "wasserstein": (w, None)}
    results: dict[str, st.StatTestResult] = {}
    for name in dict.fromkeys((method, test, effect)):
        thr = threshold(name)
        if name in fast:
            stat, p = fast[name]
            drifted = p < thr if p is not None else stat >= thr
            results[name] = st.StatTestResult(name, stat, p, thr, bool(drifted), ref.n, cur.n)
        else:
            results[name] = st.get_stattest(name)(ref, cur, thr)
    return {"spec": spec, "primary": results[method], "test": results[test], "effect": results[effect]}


def stats_from_arrays(
    numeric: dict[str, Any] | None = None,
    categorical: dict[str, Any] | None = None,
    embeddings: np.ndarray | None = None,
    sketch_size: int | None = None,
) -> WindowStats:
    """WindowStats from in-memory columns (tests, calibration, benchmarks)."""
    num = {k: st.numeric_sample(v) for k, v in (numeric or {}).items()}
    if sketch_size:
        num = {k: st.sketch(v, sketch_size) for k, v in num.items()}
    cat = {k: st.counts(v) for k, v in (categorical or {}).items()}
    rows = max([s.n for s in num.values()] + [c.n for c in cat.values()] + [0])
    return WindowStats(rows, num, cat, embeddings, 0 if embeddings is None else len(embeddings))


def merge_stats(parts: list[WindowStats]) -> WindowStats:
    names_n = dict.fromkeys(k for p in parts for k in p.numeric)
    names_c = dict.fromkeys(k for p in parts for k in p.categorical)
    return WindowStats(
        sum(p.rows for p in parts),
        {k: st.merge_samples([p.numeric[k] for p in parts if k in p.numeric]) for k in names_n},
        {k: st.merge_counts([p.categorical[k] for p in parts if k in p.categorical]) for k in names_c},
        None,
        sum(p.embedding_rows for p in parts),
    )


def compare_embeddings(
    reference: np.ndarray, current: np.ndarray, dcfg: DriftConfig
) -> tuple[tuple[ed.EmbeddingTestResult, ...], bool]:
    e = dcfg.embeddings
    assert e is not None
    ref = ed.subsample(reference, e.cap, e.seed)
    cur = ed.subsample(current, e.cap, e.seed)
    out: list[ed.EmbeddingTestResult] = []
    for m in e.methods:
        if m == "centroid":
            out.append(ed.centroid_distance(ref, cur))
        elif m == "domain_classifier":
            out.append(ed.domain_classifier_auc(ref, cur, threshold=e.auc_threshold, seed=e.seed))
        else:
            out.append(
                ed.mmd_test(
                    ed.subsample(ref, e.mmd_cap, e.seed),
                    ed.subsample(cur, e.mmd_cap, e.seed),
                    permutations=e.permutations,
                    seed=e.seed,
                    alpha=dcfg.p_value,
                )
            )
    drifted = any(r.drifted for r in out if r.method in e.detect_with)
    return tuple(out), drifted


# -- the warehouse side ------------------------------------------------------------


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


def numeric_samples(
    ctx: AnalysisContext,
    ix: Interactions,
    num_specs: list[FeatureSpec],
    bounds: Window,
    exact_max: int = CURRENT_EXACT_MAX,
) -> dict[str, st.NumericSample]:
    """The numerical features of the valid rows in `bounds`: one Arrow read, each column
    sorted (THREADS at a time) into an exact sample, sketched above `exact_max` values."""
    stmt = sa.select(*[_numeric_expr(ix, s).label(f"f{i}") for i, s in enumerate(num_specs)])
    stmt = stmt.select_from(ix.table).where(ix.in_window(), valid_rows(ix))
    table = ctx.warehouse.fetch_arrow(stmt, window_params(bounds))
    columns: list[pa.ChunkedArray | None] = list(table.columns)
    del table  # each Arrow column is freed once sorted: peak memory is ~one copy, not two

    def one(i: int) -> st.NumericSample:
        col = columns[i]
        columns[i] = None
        assert col is not None
        exact = st.sample_from_sorted(np.sort(_float_column(col, num_specs[i].name, ix)))
        del col
        return st.sketch(exact, exact_max)

    with ThreadPoolExecutor(THREADS) as pool:
        return dict(zip([s.name for s in num_specs], pool.map(one, range(len(num_specs))), strict=True))


def drift_segment(
    ctx: AnalysisContext, segment: Window, exact_max: int = CURRENT_EXACT_MAX
) -> dict[str, st.NumericSample]:
    """One time segment's numerical samples (a segment function, tasks/segments.py). On
    a Dask worker `ctx` is the worker's own; the features follow from the config."""
    specs, _ = feature_specs(ctx.cfg, ctx.interactions)
    ix = _drift_ix(ctx.interactions, specs, ctx.cfg)
    num_specs = [s for s in specs if s.kind == "numerical"]
    return numeric_samples(ctx, ix, num_specs, segment, exact_max) if num_specs else {}


def merge_numeric(
    parts: list[dict[str, st.NumericSample]], names: list[str], exact_max: int = CURRENT_EXACT_MAX
) -> dict[str, st.NumericSample]:
    """The window's samples from its segments' (the segments cover the window, no overlap).

    Every segment exact (at most `exact_max` values each): the sorted values are merged
    and the sample rebuilt from them, so it holds the very values, mean and standard
    deviation of one read of the window, and is sketched the same way: identical
    figures. A segment with more than `exact_max` values arrives as a sketch (CDF within
    1/exact_max + one row, see stattests.sketch); with k such segments of a window of n
    rows the pooled CDF is within 1/exact_max + k/n of the exact one, and within
    3/exact_max + k/n after the final sketch (whose points weigh at most n/exact_max),
    against 1/exact_max + 1/n for one read: KS statistics differ by at most
    4/exact_max + (k + 1)/n (~4e-6 at the default; tests/test_scale.py)."""
    out: dict[str, st.NumericSample] = {}
    for name in names:
        mine = [p.pop(name) for p in parts if name in p]  # popped: each part is freed once merged
        if all(m.exact for m in mine):
            x = np.concatenate([m.values for m in mine]) if mine else np.empty(0)
            del mine
            x.sort(kind="stable")  # sorted runs, merged
            merged = st.sample_from_sorted(x)
        else:
            merged = st.merge_samples(mine)
            del mine
        out[name] = st.sketch(merged, exact_max)
    return out


def read_window(
    ctx: AnalysisContext,
    ix: Interactions,
    specs: list[FeatureSpec],
    bounds: Window,
    exact_max: int = CURRENT_EXACT_MAX,
) -> tuple[WindowStats, WindowStats]:
    """(exact statistics, storable statistics) of one window: numerical columns as one
    Arrow read, sorted column by column on THREADS threads (or, with
    orchestration.segments > 1, per time segment in its own task, then merged);
    categories counted in SQL. A numerical column of more than `exact_max` values is
    kept as a sketch of `exact_max` points."""
    cfg = ctx.cfg
    params = window_params(bounds)
    where = [ix.in_window(), valid_rows(ix)]
    ecol, e = _embedding_col(ix, cfg), cfg.drift.embeddings
    # The window's rows and its rows with an embedding, in one scan.
    counted = [sa.func.count().label("rows")]
    if ecol is not None and e is not None:
        counted.append(sa.func.count(ecol).label("emb_rows"))
    totals = ctx.warehouse.fetch(sa.select(*counted).select_from(ix.table).where(*where), params)[0]
    rows = int(totals["rows"])
    num_specs = [s for s in specs if s.kind == "numerical"]
    numeric: dict[str, st.NumericSample] = {}
    if num_specs and rows:
        if segmented(ctx):
            parts = map_segments(ctx, functools.partial(drift_segment, exact_max=exact_max), bounds)
            numeric = merge_numeric(parts, [s.name for s in num_specs], exact_max)
        else:
            numeric = numeric_samples(ctx, ix, num_specs, bounds, exact_max)
    categorical = _category_counts(ctx, ix, [s for s in specs if s.kind == "categorical"], where, params)
    emb, emb_rows = None, 0
    if ecol is not None and e is not None and rows:
        if segmented(ctx):
            emb_rows, mat = embeddings_segmented(ctx, ix, bounds)
            emb = mat if len(mat) else None
        else:
            emb_rows = int(totals["emb_rows"])
            mat = _embedding_matrix(ctx, ix, bounds, presample(e, emb_rows)) if emb_rows else np.empty((0, 0))
            emb = ed.subsample(mat, e.cap, e.seed) if len(mat) else None
    exact = WindowStats(rows, numeric, categorical, emb, emb_rows)
    stored = WindowStats(
        rows, {k: st.sketch(v, cfg.drift.sketch_size) for k, v in numeric.items()}, categorical, emb, emb_rows
    )
    return exact, stored


def _hash_sample(ctx: AnalysisContext, ix: Interactions, fraction: float) -> sa.ColumnElement[bool] | None:
    """A filter keeping ~`fraction` of the rows, by a hash of request_id (or timestamp):
    deterministic, computed in the warehouse. None when fraction >= 1 or the warehouse
    has no hash function aimon knows (then every row is read, as before)."""
    if fraction >= 1:
        return None
    key = ix.req("request_id") if ix.has("request_id") else ix.req("timestamp")
    text = sa.cast(key, sa.String)
    if ctx.warehouse.backend == "duckdb":
        h: Any = sa.func.hash(text)
    elif ctx.warehouse.backend == "postgresql":
        h = sa.func.hashtextextended(text, 0)  # PostgreSQL >= 11
    else:
        return None
    return h.bitwise_and(HASH_BUCKETS - 1) < math.ceil(fraction * HASH_BUCKETS)


def _category_counts(
    ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], where: list[Any], params: dict[str, Any]
) -> dict[str, st.Counts]:
    """Each categorical feature's value counts: one scan with GROUPING SETS where the
    warehouse has them (DuckDB, PostgreSQL), else one GROUP BY per feature."""
    if not specs:
        return {}
    values: dict[str, dict[Any, int]] = {s.name: {} for s in specs}
    if ctx.warehouse.backend in ("duckdb", "postgresql") and len(specs) > 1:
        # A row outside a feature's own filter (error_type of a success) is null for that
        # feature; in the grouping set of feature k only column k is set, and null
        # groups (no value) are dropped.
        exprs = []
        for spec in specs:
            expr, extra = _categorical(ix, spec)
            exprs.append(sa.case((sa.and_(*extra), expr), else_=None) if extra else expr)
        q = (
            sa.select(*[e.label(f"g{i}") for i, e in enumerate(exprs)], sa.func.count().label("n"))
            .select_from(ix.table)
            .where(*where)
            .group_by(sa.func.grouping_sets(*[sa.tuple_(e) for e in exprs]))
        )
        for r in ctx.warehouse.fetch(q, params):
            for i, spec in enumerate(specs):
                if r[f"g{i}"] is not None:
                    values[spec.name][r[f"g{i}"]] = int(r["n"])
                    break
    else:
        for spec in specs:
            expr, extra = _categorical(ix, spec)
            q = (
                sa.select(expr.label("g_value"), sa.func.count().label("n"))
                .select_from(ix.table)
                .where(*where, *extra, expr.is_not(None))
                .group_by(sa.literal_column("g_value"))
            )
            values[spec.name] = {r["g_value"]: int(r["n"]) for r in ctx.warehouse.fetch(q, params)}
    return {name: st.Counts.of(v) for name, v in values.items()}


def presample(e: EmbeddingDriftConfig, rows: int) -> float:
    """The share of a window's embedding rows read from the warehouse: all of them up to
    SQL_SAMPLE_FACTOR x cap rows, else a hash pre-sample of ~SQL_SAMPLE_FACTOR x cap."""
    return min(1.0, SQL_SAMPLE_FACTOR * e.cap / rows) if rows else 1.0


def _embedding_filter(ctx: AnalysisContext, ix: Interactions, fraction: float) -> list[sa.ColumnElement[bool]]:
    pre = _hash_sample(ctx, ix, fraction)
    return [] if pre is None else [pre]


def _embedding_count(ctx: AnalysisContext, ix: Interactions, bounds: Window, fraction: float = 1.0) -> int:
    ecol = _embedding_col(ix, ctx.cfg)
    assert ecol is not None
    where = [ix.in_window(), valid_rows(ix), ecol.is_not(None), *_embedding_filter(ctx, ix, fraction)]
    return int(
        ctx.warehouse.scalar(sa.select(sa.func.count()).select_from(ix.table).where(*where), window_params(bounds))
    )


def _embedding_query(
    ix: Interactions, ecol: sa.ColumnElement[Any], extra: list[sa.ColumnElement[bool]]
) -> sa.Select[Any]:
    q = sa.select(ecol.label("e")).select_from(ix.table)
    q = q.where(ix.in_window(), valid_rows(ix), ecol.is_not(None), *extra)
    # Ordered, so the seeded subsample picks the same rows every time.
    return q.order_by(ix.req("timestamp"), *([ix.req("request_id")] if ix.has("request_id") else []))


def _embedding_matrix(ctx: AnalysisContext, ix: Interactions, bounds: Window, fraction: float = 1.0) -> np.ndarray:
    """The embeddings of the valid rows in `bounds` (a hash pre-sample of `fraction` of
    them when < 1: big windows), in (timestamp, request_id) order."""
    ecol, e = _embedding_col(ix, ctx.cfg), ctx.cfg.drift.embeddings
    assert ecol is not None and e is not None
    q = _embedding_query(ix, ecol, _embedding_filter(ctx, ix, fraction))
    try:
        return ed.to_matrix(ctx.warehouse.fetch_arrow(q, window_params(bounds)).column(0))
    except (ValueError, TypeError) as err:
        raise ContractError(f"column {e.column!r} of table {ix.table.name!r}: {err}") from None


def embedding_segment(ctx: AnalysisContext, segment: Window, picks: np.ndarray, fraction: float = 1.0) -> np.ndarray:
    """The rows at `picks` (positions in time order) of one segment's embeddings, or of
    their hash pre-sample (`fraction` < 1): a segment function, tasks/segments.py."""
    specs, _ = feature_specs(ctx.cfg, ctx.interactions)
    mat = _embedding_matrix(ctx, _drift_ix(ctx.interactions, specs, ctx.cfg), segment, fraction)
    return mat[picks[picks < len(mat)]]


def embeddings_segmented(ctx: AnalysisContext, ix: Interactions, bounds: Window) -> tuple[int, np.ndarray]:
    """(rows with an embedding, the seeded subsample) of `bounds`, read per segment: the
    warehouse counts each segment's embeddings, the rows `ed.subsample` would pick from
    the whole window are drawn here, and each segment returns only its picks. The
    segments are consecutive in time, so the window's (timestamp, request_id) order is
    theirs one after another: the same rows as one read."""
    ecol, e = _embedding_col(ix, ctx.cfg), ctx.cfg.drift.embeddings
    assert ecol is not None and e is not None
    segments = segment_bounds(bounds, ctx.cfg.orchestration.segments)
    rows = _embedding_count(ctx, ix, bounds)
    # The same pre-sample as one read: its share is the whole window's, and the hash
    # keeps a row or not whatever segment it is in.
    fraction = presample(e, rows)
    counts = [_embedding_count(ctx, ix, s, fraction) for s in segments]
    total = sum(counts)
    if not total:
        return rows, np.empty((0, 0), np.float32)
    # What ed.subsample draws for a window of `total` rows.
    rng = np.random.default_rng(e.seed)
    picks = np.arange(total) if total <= e.cap else np.sort(rng.choice(total, size=e.cap, replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)])
    calls = []
    for s, lo, hi in zip(segments, starts[:-1], starts[1:], strict=True):
        mine = picks[(picks >= lo) & (picks < hi)] - lo
        if len(mine):
            calls.append((functools.partial(embedding_segment, picks=mine, fraction=fraction), s))
    parts = [m for m in run_calls(ctx, calls) if len(m)]  # none empty unless rows vanished meanwhile
    return rows, np.vstack(parts) if parts else np.empty((0, 0), np.float32)


def _float_column(col: pa.ChunkedArray, name: str, ix: Interactions) -> np.ndarray:
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)):
        raise ContractError(
            f"drift feature {name!r} (table {ix.table.name!r}) is {t}, not a number: declare it type: categorical"
        )
    col = pc.drop_null(col)
    if pa.types.is_null(t) or len(col) == 0:
        return np.empty(0)
    x = np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=np.float64)
    return x[np.isfinite(x)] if not np.isfinite(x).all() else x


def reference_windows(cfg: Config, window: Window) -> list[Window]:
    """The windows that make up the reference: the previous N windows, or the baseline
    period [start, end) in `windows.timezone` (end exclusive, like every window)."""
    ref = cfg.reference
    if ref.baseline is not None:
        tz = cfg.windows.tz
        start = dt.datetime.combine(ref.baseline.start, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        end = dt.datetime.combine(ref.baseline.end, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        return [Window(start.replace(tzinfo=None), end.replace(tzinfo=None), window.granularity, window.timezone)]
    out: list[Window] = []
    w = window
    for _ in range(ref.previous_windows or 7):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        out.append(w)
    return out[::-1]


def stats_hash(cfg: Config, specs: list[FeatureSpec]) -> str:
    e = cfg.drift.embeddings
    return config_hash(
        {
            "table": cfg.warehouse.interactions_table,
            "columns": cfg.warehouse.columns,
            "features": [(s.name, s.kind, s.builtin) for s in specs],
            "sketch_size": cfg.drift.sketch_size,
            "embeddings": None if e is None else (e.column, e.cap, e.seed),
        }
    )


@dataclass(frozen=True)
class ReferenceLoad:
    stats: WindowStats
    embedding_parts: tuple[tuple[int, np.ndarray], ...]
    windows: int
    from_cache: int
    read: int


def window_counts(ctx: AnalysisContext, ix: Interactions, windows: list[Window]) -> list[int]:
    """Each window's valid rows, in one scan of their span (a row store such as
    PostgreSQL reads a wide table's pages once, not once per window)."""
    if not windows:
        return []
    ts = ix.req("timestamp")
    params: dict[str, Any] = {"window_start": min(w.start for w in windows), "window_end": max(w.end for w in windows)}
    whens = []
    for i, w in enumerate(windows):
        params[f"ref{i}_start"], params[f"ref{i}_end"] = w.start, w.end
        lo, hi = sa.bindparam(f"ref{i}_start", type_=sa.DateTime), sa.bindparam(f"ref{i}_end", type_=sa.DateTime)
        whens.append((sa.and_(ts >= lo, ts < hi), i))
    bucket = sa.case(*whens, else_=None).label("w")
    q = (
        sa.select(bucket, sa.func.count().label("n"))
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("w"))
    )
    counts = {r["w"]: int(r["n"]) for r in ctx.warehouse.fetch(q, params)}
    return [counts.get(i, 0) for i in range(len(windows))]


def load_reference(
    ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], cache: ReferenceCache, cfg_hash: str
) -> ReferenceLoad:
    """Stored statistics for each reference window whose row count is unchanged;
    the others are read once and stored."""
    parts, emb_parts = [], []
    cached = read = 0
    windows = reference_windows(ctx.cfg, ctx.window)
    for w, rows_now in zip(windows, window_counts(ctx, ix, windows), strict=True):
        key = entry_key(cfg_hash, w.start, w.end)
        hit = cache.get(key)
        if hit is not None and hit[0] == rows_now:
            stats = hit[1]
            cached += 1
        else:
            _, stats = read_window(ctx, ix, specs, w)
            cache.put(key, w.start, w.end, cfg_hash, stats)
            read += 1
        parts.append(stats)
        if stats.embeddings is not None:
            emb_parts.append((stats.embedding_rows, stats.embeddings))
    return ReferenceLoad(merge_stats(parts), tuple(emb_parts), len(parts), cached, read)


def analyze_drift(ctx: AnalysisContext) -> AnalyzerResult:
    cfg, dcfg = ctx.cfg, ctx.cfg.drift
    specs, notes = feature_specs(cfg, ctx.interactions)
    ix = _drift_ix(ctx.interactions, specs, cfg)
    cache = ReferenceCache(cfg.store_url)
    h = stats_hash(cfg, specs)
    current, stored = read_window(ctx, ix, specs, ctx.window)
    if segmented(ctx):
        notes.append(describe_segments(ctx, "drift numerical features"))
    # Today's window is tomorrow's reference: keep its statistics (unless a rerun
    # already stored them for the same rows).
    key = entry_key(h, ctx.window.start, ctx.window.end)
    if cache.rows(key) != current.rows:
        cache.put(key, ctx.window.start, ctx.window.end, h, stored)
    ref = load_reference(ctx, ix, specs, cache, h)
    notes.append(
        f"drift reference: {ref.windows} window(s), {ref.stats.rows:,} rows; "
        f"{ref.from_cache} from stored statistics, {ref.read} read"
    )
    if current.rows == 0 or ref.stats.rows == 0:
        notes.append(f"drift: skipped, no accepted rows in the {'current window' if not current.rows else 'reference'}")
        return AnalyzerResult("drift", (), tuple(notes), {"reference_windows_read": ref.read})
    report = compare(ref.stats, current, specs, dcfg)
    notes += report.notes
    emb_results: tuple[ed.EmbeddingTestResult, ...] = ()
    emb_drift: bool | None = None
    if dcfg.embeddings is not None:
        ref_emb = ed.combine_reference(list(ref.embedding_parts), dcfg.embeddings.cap, dcfg.embeddings.seed)
        if current.embeddings is None or not len(ref_emb):
            notes.append(f"embedding drift: skipped, no {dcfg.embeddings.column!r} values on both sides")
        else:
            emb_results, emb_drift = compare_embeddings(ref_emb, current.embeddings, dcfg)
    report = DriftReport(
        report.features, report.share, report.dataset_drift, report.dataset_share, emb_results, emb_drift, report.notes
    )
    notes.append(summary_line(report))
    details: dict[str, Any] = {
        "reference_windows": ref.windows,
        "reference_windows_cached": ref.from_cache,
        "reference_windows_read": ref.read,
        "reference_rows": ref.stats.rows,
        "current_rows": current.rows,
        "report": report,
    }
    if dcfg.html_report:
        details["html_report"] = str(save_html_report(ctx, ix, specs))
        notes.append(f"drift report: {details['html_report']}")
    return AnalyzerResult("drift", tuple(drift_records(report)), tuple(notes), details)


def summary_line(report: DriftReport) -> str:
    n = len(report.features)
    head = (
        f"drift: {len(report.drifted)} of {n} features drifted ({report.share:.0%}; "
        f"dataset drift at {report.dataset_share:.0%}: {'YES' if report.dataset_drift else 'no'})"
    )
    if report.drifted:
        head += ": " + "; ".join(f.explain() for f in report.drifted)
    if report.embeddings:
        parts = ", ".join(
            f"{r.method} {r.statistic:.3g}" + (f" p={r.p_value:.2g}" if r.p_value is not None else "")
            for r in report.embeddings
        )
        e0 = report.embeddings[0]
        head += (
            f". Embedding drift: {'YES' if report.embedding_drift else 'no'} ({parts}; "
            f"{e0.n_reference:,} vs {e0.n_current:,} rows sampled)"
        )
    return head


def drift_records(report: DriftReport) -> list[MetricRecord]:
    recs: list[MetricRecord] = []
    for f in report.features:
        recs.append(MetricRecord.of("data_drift_score", _finite(f.statistic), feature=f.feature, method=f.method))
        if f.effect_method != f.method:
            recs.append(MetricRecord.of("data_drift_score", f.effect, feature=f.feature, method=f.effect_method))
        recs.append(MetricRecord.of("data_drift_p_value", f.p_value, feature=f.feature, method=f.test_method))
        recs.append(
            MetricRecord.of("data_drift_p_value_adjusted", f.p_value_adjusted, feature=f.feature, method=f.test_method)
        )
        recs.append(MetricRecord.of("data_drift_detected", float(f.detected), feature=f.feature))
    recs.append(MetricRecord.of("data_drift_share", report.share))
    recs.append(MetricRecord.of("data_drift_dataset_detected", float(report.dataset_drift)))
    for r in report.embeddings:
        recs.append(MetricRecord.of("embedding_drift_score", r.statistic, method=r.method))
        if r.p_value is not None:
            recs.append(MetricRecord.of("embedding_drift_p_value", r.p_value, method=r.method))
    if report.embedding_drift is not None:
        recs.append(MetricRecord.of("embedding_drift_detected", float(report.embedding_drift)))
    return recs


def _finite(v: float) -> float:
    """Chi-square is infinite when a category is new; stores and Prometheus want a number."""
    return v if math.isfinite(v) else 1e300


def drift_frame(
    ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], bounds: list[Window], cap: int | None = None
) -> Any:
    """The drift features of the windows `bounds` as one pandas frame, one column per
    feature, valued as the analyzer sees them (a categorical feature's rows outside its
    own filter, e.g. error_type on successful requests, are null): what Evidently, or a
    notebook, would be handed. A seeded sample of `cap` rows when there are more."""
    import pandas as pd

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
    import warnings

    from aimon.env import aimon_home

    with warnings.catch_warnings():
        # evidently's import chain (numpy.core, litestar) warns about itself; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

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

"""Semantic similarity: the cosine similarity of each response's embedding to its
reference answer's (`response_embedding`, `reference_embedding`: lists of floats or
JSON text, parsed as drift's `embedding`), averaged per model and endpoint, with a 95%
interval (a percentile bootstrap over rows up to BOOTSTRAP_MAX rows, the normal
interval of the mean above). Computed on arrays, one matrix product per dimension.

A row whose embeddings cannot be compared is left out and counted
(`quality_excluded_rows{family="semantic", reason}`): either side malformed (the
reasons of aimon.stats.embedding_rows, prefixed `response_`/`reference_`), the two of
different lengths (`dimension_mismatch`) or one of them the zero vector
(`zero_vector`).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import sqlalchemy as sa

from aimon.records import ALL, MetricRecord
from aimon.stats import embedding_rows as er
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality.figures import Family, Figure
from aimon.tasks.quality.generation import bootstrap_interval
from aimon.tasks.quality.reads import segment_columns, segments

BOOTSTRAP_MAX = 20_000  # rows: above, the mean's normal interval (the bootstrap's own limit)
REASONS = (
    *(f"{side}_{p}" for side in ("response", "reference") for p in er.PROBLEMS),
    "dimension_mismatch",
    "zero_vector",
)


def row_similarities(response: Any, reference: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(cosine of each comparable row, its positions, rows left out by reason) for two
    aligned columns without nulls."""
    a, b = er.parse_rows(response), er.parse_rows(reference)
    left = {r: 0 for r in REASONS}
    # Each row counted once: by its response's problem, else by its reference's.
    for side, problem in (("response", a.problem), ("reference", np.where(a.problem == 0, b.problem, 0))):
        counts = np.bincount(problem, minlength=len(er.PROBLEMS) + 1)
        for i, name in enumerate(er.PROBLEMS):
            left[f"{side}_{name}"] = int(counts[i + 1])
    ok = (a.problem == 0) & (b.problem == 0)
    same = ok & (a.lengths == b.lengths) & (a.lengths > 0)
    left["dimension_mismatch"] = int((ok & ~same).sum())
    sims = np.empty(len(a))
    for d in np.unique(a.lengths[same]):
        pos = np.flatnonzero(same & (a.lengths == d))
        x = a.take(pos).matrix(int(d)).astype(np.float64)
        y = b.take(pos).matrix(int(d)).astype(np.float64)
        nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sims[pos] = np.einsum("ij,ij->i", x, y) / (nx * ny)
    zero = same.copy()
    zero[same] = ~np.isfinite(sims[same])
    left["zero_vector"] = int(zero.sum())
    keep = np.flatnonzero(same & ~zero)
    return np.clip(sims[keep], -1.0, 1.0), keep, left


def _embeddings(ctx: AnalysisContext, params: dict[str, Any], columns: tuple[str, ...], fraction: float = 1.0) -> Any:
    """The segment columns, the endpoint (g_endpoint) and `columns` (all non-null) of the
    valid rows in the window `params` names, in (timestamp, request_id) order; a hash
    pre-sample of `fraction` of them when < 1 (drift's)."""
    from aimon.tasks.drift.reads import hash_sample  # noqa: PLC0415  the drift pre-sample, shared

    ix = ctx.interactions
    endpoint = ix.col("endpoint")
    pre = hash_sample(ctx, ix, fraction)
    order = [ix.req("timestamp")] + ([ix.req("request_id")] if ix.has("request_id") else [])
    stmt = (
        sa.select(
            *segment_columns(ctx),
            (sa.cast(endpoint, sa.String) if endpoint is not None else sa.literal(ALL)).label("g_endpoint"),
            *[ix.req(c).label(c) for c in columns],
        )
        .select_from(ix.table)
        .where(
            ix.in_window(),
            valid_rows(ix),
            *[ix.req(c).is_not(None) for c in columns],
            *([pre] if pre is not None else []),
        )
        .order_by(*order)
    )
    return ctx.warehouse.fetch_arrow(stmt, params)


def by_endpoint(df: Any, values: np.ndarray) -> Any:
    """(labels, values of those rows) per endpoint and over all (`endpoint` __all__),
    each by segments(): model, all models, experiment variant; rows whose value is NaN
    are left out."""
    known = np.isfinite(values)
    eps = df["g_endpoint"].astype(str).to_numpy()
    for ep in [*sorted(set(eps[known])), ALL]:
        on_ep = known & (eps == ep) if ep != ALL else known
        for labels, mask in segments(df[on_ep].reset_index(drop=True)):
            x = values[on_ep][mask]
            if len(x):
                yield {**labels, "endpoint": ep}, x


def semantic_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    ix = ctx.interactions
    if not (ix.has("response_embedding") and ix.has("reference_embedding")):
        return fam  # not logged: nothing to say
    q = ctx.cfg.quality
    table = _embeddings(ctx, ctx.params, ("response_embedding", "reference_embedding"))
    sims, keep, left = row_similarities(table.column("response_embedding"), table.column("reference_embedding"))
    for reason, n in left.items():
        fam.extra.append(MetricRecord.of("quality_excluded_rows", n, family="semantic", reason=reason))
    bad = sum(left.values())
    if bad:
        named = ", ".join(f"{n:,} {r}" for r, n in left.items() if n)
        fam.notes.append(
            f"semantic similarity: {bad:,} rows with embeddings that cannot be compared left out ({named})"
        )
    if not len(sims):
        if table.num_rows:
            fam.notes.append("semantic similarity: no comparable (response, reference) embedding pairs")
        return fam
    df = table.drop_columns(["response_embedding", "reference_embedding"]).take(keep).to_pandas()
    stamp = int((ctx.window.start - dt.datetime(1970, 1, 1)).total_seconds())
    for labels, x in by_endpoint(df, sims):
        fam.figures.append(Figure.of("semantic_similarity", float(x.mean()), len(x), **labels))
        ci = _interval(x, q.bootstrap_iterations, np.random.default_rng([q.seed, stamp, len(x)]))
        if ci is not None:
            fam.extra.append(MetricRecord.of("semantic_similarity_ci_low", ci[0], **labels))
            fam.extra.append(MetricRecord.of("semantic_similarity_ci_high", ci[1], **labels))
    return fam


def _interval(x: np.ndarray, iterations: int, rng: np.random.Generator) -> tuple[float, float] | None:
    if iterations <= 0 or len(x) < 2:
        return None
    if len(x) > BOOTSTRAP_MAX:
        half = 1.959963984540054 * float(np.std(x, ddof=1)) / math.sqrt(len(x))
        return float(x.mean() - half), float(x.mean() + half)
    ci = bootstrap_interval(len(x), lambda counts: counts @ x / len(x), iterations, rng)
    return None if ci is None else (float(ci[0]), float(ci[1]))


# -- similarity to the reference period's responses (no reference answer needed) -------

REFERENCE_ROWS = 5000  # reference-period responses per endpoint (a hash pre-sample above)
CENTROIDS = 8  # k-means centroids of the reference responses, per endpoint


def _unit(x: np.ndarray) -> np.ndarray:
    """The rows scaled to unit length; a zero row becomes NaN (its similarity is unknown)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / np.where(norms > 0, norms, np.nan)  # type: ignore[no-any-return]


def centroids(reference: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Unit-length k-means centroids (scikit-learn) of the unit-normalised rows."""
    from sklearn.cluster import KMeans  # noqa: PLC0415  lazy, as drift's classifier

    x = _unit(reference.astype(np.float64))
    x = x[np.isfinite(x).all(axis=1)]
    k = max(1, min(k, len(x) // 20))
    c = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x).cluster_centers_ if k > 1 else x.mean(axis=0)[None]
    return _unit(np.asarray(c))


def nearest_centroid_similarity(current: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each current row's cosine similarity to its nearest reference centroid (NaN for a
    zero row)."""
    return (_unit(current.astype(np.float64)) @ centres.T).max(axis=1)  # type: ignore[no-any-return]


def reference_similarity_family(ctx: AnalysisContext) -> Family:
    """`semantic_reference_similarity{model, endpoint}`: the mean, over the window's
    responses, of the cosine similarity to the nearest of CENTROIDS k-means centroids of
    the reference period's responses on the same endpoint (drift's reference range). A
    label-free quality-shift signal: answers unlike last week's score lower."""
    from aimon.tasks.quality.concept_drift import reference_range  # noqa: PLC0415

    fam = Family()
    if not ctx.interactions.has("response_embedding"):
        return fam
    q = ctx.cfg.quality
    start, before, name = reference_range(ctx.window, ctx.cfg.reference)
    ref_params = {"window_start": start, "window_end": before}
    ix = ctx.interactions
    total = int(
        ctx.warehouse.scalar(
            sa.select(sa.func.count())
            .select_from(ix.table)
            .where(ix.in_window(), valid_rows(ix), ix.req("response_embedding").is_not(None)),
            ref_params,
        )
    )
    if not total:
        fam.notes.append(f"semantic reference similarity: no response embeddings in the reference ({name})")
        return fam
    ref = _embeddings(ctx, ref_params, ("response_embedding",), min(1.0, 4 * REFERENCE_ROWS / total))
    cur = _embeddings(ctx, ctx.params, ("response_embedding",))
    ref_rows = er.parse_rows(ref.column("response_embedding"))
    cur_rows = er.parse_rows(cur.column("response_embedding"))
    dim = er.window_dimension(cur_rows.dimensions(), None)
    if dim is None or not cur.num_rows:
        return fam
    ref_eps = ref.column("g_endpoint").to_numpy(zero_copy_only=False).astype(str)
    keep_cur = np.flatnonzero((cur_rows.problem == 0) & (cur_rows.lengths == dim))
    cur_x = cur_rows.take(keep_cur).matrix(dim)
    df = cur.drop_columns(["response_embedding"]).take(keep_cur).to_pandas()
    eps = df["g_endpoint"].astype(str).to_numpy()
    stamp = int((ctx.window.start - dt.datetime(1970, 1, 1)).total_seconds())
    sims = np.full(len(df), np.nan)
    for ep in sorted(set(eps)):
        on = np.flatnonzero((ref_rows.problem == 0) & (ref_rows.lengths == dim) & (ref_eps == ep))
        if len(on) < 20:
            continue
        on = np.sort(np.random.default_rng([q.seed, stamp]).permutation(on)[:REFERENCE_ROWS])
        centres = centroids(ref_rows.take(on).matrix(dim), CENTROIDS, q.seed)
        sims[eps == ep] = nearest_centroid_similarity(cur_x[eps == ep], centres)
    for labels, x in by_endpoint(df, sims):
        fam.figures.append(Figure.of("semantic_reference_similarity", float(x.mean()), len(x), **labels))
    return fam

"""The drift verdict ("calculate", in NannyML's words): the current window's statistics
against the reference's, feature by feature, plus embedding drift, and a dataset verdict.

Pure: statistics in, verdicts out, no warehouse. The analyzer, the tests and the
calibration (bench/calibrate_drift.py) all run this same comparison.

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

With a History (the analyzer's, from stored figures; drift.thresholds.mode learned)
the effect's floor becomes the feature's learned bound (aimon.tasks.drift.history):
never below the floor, higher where the feature's own window-to-window wobble is.
Without one (the calibration, the statistics tests) the floor alone decides, as in
mode fixed. Either way, a feature with fewer than drift.min_sample rows on a side is
not judged: its figures are kept, its verdict is "no" with judged False.
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aimon.config import DriftConfig
from aimon.stats import embedding as ed
from aimon.stats import stattests as st
from aimon.store.reference import WindowStats
from aimon.tasks.drift.features import THREADS, FeatureSpec
from aimon.tasks.drift.history import (
    AUC_Z,
    EMBEDDING,
    SCALED,
    Bound,
    History,
    learned_bound,
    scaled_bound,
    size_scale,
)


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
    # The effect's bound actually used: the floor (mode fixed) or the learned one.
    bound: Bound | None = None
    judged: bool = True  # False: fewer than min_sample rows on a side
    min_sample: int = 0

    @property
    def effect_bound(self) -> float:
        return self.effect_floor if self.bound is None else self.bound.value

    def explain(self) -> str:
        stat = f"{self.method} {self.statistic:.4g}"
        if self.method != self.effect_method:
            limit = f"floor {self.effect_floor:g}" if self.bound is None else self.bound.describe()
            stat += f", {self.effect_method} {self.effect:.3g} ({limit})"
        elif self.bound is not None:
            stat += f" ({self.bound.describe()})"
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
    embedding_bound: Bound | None = None  # the AUC's bound (None: auc_threshold, fixed)
    embedding_judged: bool = True  # False: fewer than embeddings.min_sample rows a side

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.detected)

    @property
    def not_judged(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if not f.judged)


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


def compare(
    reference: WindowStats,
    current: WindowStats,
    specs: list[FeatureSpec],
    dcfg: DriftConfig,
    history: History | None = None,
) -> DriftReport:
    """Every feature's test and effect, BH across features, the dataset verdict; with a
    `history`, each effect against its learned bound (see the module doc)."""
    t = dcfg.thresholds
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
        bound = None
        if history is not None:
            past = history.past_scores(spec.name, effect_r.method)
            cold = floor * t.cold_start_factor
            if t.scale == "rows":
                scaled = history.past_scores(spec.name, SCALED + effect_r.method)
                scale = size_scale(primary.n_reference, primary.n_current)
                bound = scaled_bound(scaled, past, scale, floor, t.k, t.min_windows, cold, t.quantile)
            else:
                bound = learned_bound(past, floor, t.k, t.min_windows, cold, t.quantile)
        need = dcfg.min_sample.of(spec.name)
        judged = min(primary.n_reference, primary.n_current) >= need
        limit = floor if bound is None else bound.value
        detected = judged and bool(
            p_adj < alpha and effect_r.statistic >= limit and (primary.uses_p_value or primary.drifted)
        )
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
                bound,
                judged,
                need,
            )
        )
    skipped = [f for f in out if not f.judged]
    if skipped:
        notes.append(
            "drift.min_sample: not judged, too few rows on a side: "
            + "; ".join(
                f"{f.feature} {f.n_reference:,} reference vs {f.n_current:,} current < {f.min_sample:,}"
                for f in skipped
            )
        )
    share = sum(f.detected for f in out) / len(out) if out else 0.0
    return DriftReport(
        tuple(out), share, bool(out) and share >= dcfg.dataset_share, dcfg.dataset_share, notes=tuple(notes)
    )


def compare_thinned(
    full: WindowStats,
    thinned: WindowStats,
    names: set[str],
    current: WindowStats,
    specs: list[FeatureSpec],
    dcfg: DriftConfig,
    history: History | None = None,
) -> DriftReport:
    """compare() against the reference with drifted windows left out (`thinned`; the
    features `names` were thinned), where such a feature drifts only if it drifts
    against the full reference too. The thinned reference keeps a spike day from
    poisoning the days after it; the full one keeps a slow walk from turning one false
    drift into a run of them (leaving the latest window out makes the reference older
    just when the feature has moved on). The figures are the thinned comparison's."""
    report = compare(thinned, current, specs, dcfg, history)
    if not names:
        return report
    full_verdict = {f.feature: f.detected for f in compare(full, current, specs, dcfg, history).features}
    features = tuple(
        dataclasses.replace(f, detected=f.detected and full_verdict.get(f.feature, False)) if f.feature in names else f
        for f in report.features
    )
    share = sum(f.detected for f in features) / len(features) if features else 0.0
    return dataclasses.replace(
        report, features=features, share=share, dataset_drift=bool(features) and share >= dcfg.dataset_share
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


def embedding_bound(dcfg: DriftConfig, history: History | None) -> Bound | None:
    """The domain classifier AUC's learned bound *in null-spread units* (AUC_Z: the AUC
    above 0.5 over its spread on two samples of one distribution at the window's
    sample sizes), from the past windows' z, never below learned_z_floor (and
    auc_noise_z); None where the bound is fixed. auc_bound turns it into an AUC at the
    window's sizes.

    Learned in z, not in AUC: a day's AUC wobbles by chance in proportion to
    1/sqrt(rows), so a bound learned from raw AUCs of 150-row weekends and 1,500-row
    weekdays sits in the weekends' noise and misses a real weekday shift (an AUC of
    0.62 against a learned 0.66); in z both wobble alike."""
    e, t = dcfg.embeddings, dcfg.thresholds
    if e is None or history is None or not e.learned or t.mode != "learned":
        return None
    past = history.past_scores(EMBEDDING, AUC_Z)
    # Cold start (fewer than min_windows past z): auc_bound judges by auc_threshold and
    # the learned_z_floor at the window's sizes.
    floor = max(e.auc_noise_z, e.learned_z_floor)
    return learned_bound(past, floor, t.k if e.k is None else e.k, t.min_windows, math.nan, t.quantile)


def auc_bound(dcfg: DriftConfig, z_bound: Bound | None, n_reference: int, n_current: int) -> Bound | None:
    """The AUC the window is judged against: max(auc_threshold, 0.5 + z x the null
    spread at these sizes) with a learned z, else max(auc_threshold, the auc_noise_z
    bound); None where the bound is fixed (no history used)."""
    e = dcfg.embeddings
    assert e is not None
    if z_bound is None:
        return None
    spread = ed.auc_null_spread(n_reference, n_current)
    noise = ed.auc_noise_bound(n_reference, n_current, e.auc_noise_z)
    if z_bound.basis == "cold start" or z_bound.median is None or z_bound.spread is None:
        # Not learned yet: auc_threshold, but never within learned_z_floor of chance (at
        # 200 vs 4,000 rows 0.55 is 1.6 sigma: one window in 20 would cross it).
        floor = ed.auc_noise_bound(n_reference, n_current, e.learned_z_floor)
        return Bound(max(e.auc_threshold, noise, floor), "cold start", z_bound.history)
    learned = min(1.0, 0.5 + z_bound.value * spread)
    basis = "learned" if learned >= e.auc_threshold else "floor"
    return Bound(
        max(e.auc_threshold, learned), basis, z_bound.history, 0.5 + z_bound.median * spread, z_bound.spread * spread
    )


def judge_embeddings(
    reference: np.ndarray, current: np.ndarray, dcfg: DriftConfig, history: History | None = None
) -> tuple[tuple[ed.EmbeddingTestResult, ...], bool, Bound | None, bool, str | None]:
    """(results, verdict, the AUC's bound, judged, a note): compare_embeddings against the
    learned bound, and not judged (verdict False) below embeddings.min_sample rows a side."""
    e = dcfg.embeddings
    assert e is not None
    results, drifted, bound = compare_embeddings(reference, current, dcfg, embedding_bound(dcfg, history))
    n_ref, n_cur = results[0].n_reference, results[0].n_current
    if min(n_ref, n_cur) >= e.min_sample:
        return results, drifted, bound, True, None
    note = (
        f"embedding drift: not judged, {n_ref:,} reference vs {n_cur:,} current rows "
        f"< drift.embeddings.min_sample {e.min_sample:,}"
    )
    return results, False, bound, False, note


def compare_embeddings(
    reference: np.ndarray, current: np.ndarray, dcfg: DriftConfig, z_bound: Bound | None = None
) -> tuple[tuple[ed.EmbeddingTestResult, ...], bool, Bound | None]:
    """The embedding tests, the verdict (any `detect_with` method drifted) and the AUC
    bound used; with a learned `z_bound` (embedding_bound) the domain classifier's AUC
    is judged against it at the sampled sizes (auc_bound), else against auc_threshold
    (and the auc_noise_z bound)."""
    e = dcfg.embeddings
    assert e is not None
    ref = ed.subsample(reference, e.cap, e.seed)
    cur = ed.subsample(current, e.cap, e.seed)
    out: list[ed.EmbeddingTestResult] = []
    bound = auc_bound(dcfg, z_bound, len(ref), len(cur))
    auc_threshold = (
        max(e.auc_threshold, ed.auc_noise_bound(len(ref), len(cur), e.auc_noise_z)) if bound is None else bound.value
    )
    for m in e.methods:
        if m == "centroid":
            out.append(ed.centroid_distance(ref, cur, permutations=e.permutations, seed=e.seed, alpha=dcfg.p_value))
        elif m == "domain_classifier":
            out.append(ed.domain_classifier_auc(ref, cur, threshold=auc_threshold, seed=e.seed))
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
    return tuple(out), drifted, bound

"""Drift judged against each feature's own history (drift.thresholds), with a minimum
sample (drift.min_sample) and a reference one bad window cannot poison
(drift.reference_excludes_drifted): the learned bound equals the robust statistic
computed independently (order statistics by hand), never goes below the floor, a thin feature is not
judged, a spike day in the reference does not make the normal days after it drift, and
a real shift is still caught."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimon.config.analyses import DriftConfig
from aimon.records import AnalyzerResult, MetricRecord
from aimon.stats import embedding as ed
from aimon.store.metrics import Store
from aimon.store.reference import WindowStats
from aimon.tasks.drift.analyzer import analyze_drift
from aimon.tasks.drift.calculate import DriftReport, compare, compare_thinned, judge_embeddings, stats_from_arrays
from aimon.tasks.drift.features import FeatureSpec
from aimon.tasks.drift.fit import ReferenceLoad, merge_stats, pooled_reference
from aimon.tasks.drift.history import AUC_Z, EMBEDDING, SCALED, History, learned_bound, scaled_bound, size_scale
from aimon.tasks.drift.records import drift_records
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests.conftest import DAY, make_config, write_duckdb

T0 = dt.datetime(2026, 1, 1)


def _quantile(x: list[float], q: float) -> float:
    """The q-quantile by hand: linear interpolation between order statistics."""
    v = sorted(x)
    pos = (len(v) - 1) * q
    lo = int(pos)
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (pos - lo)


def robust_bound(x: list[float], floor: float, k: float = 3.5, q: float = 0.9) -> float:
    """The reference computation: median + k x (q-quantile - median), never below the floor."""
    med = _quantile(x, 0.5)
    assert med == pytest.approx(float(np.median(x)))
    return max(floor, med + k * (_quantile(x, q) - med))


def test_learned_bound_is_median_plus_k_spread_never_below_the_floor() -> None:
    rng = np.random.default_rng(7)
    scores = list(rng.gamma(4.0, 0.015, 28))  # skewed, like a distance's day-to-day wobble
    b = learned_bound(scores, 0.05, 3.5, 14, 0.1)
    assert b.value == pytest.approx(robust_bound(scores, 0.05), rel=1e-12)
    assert b.value > 0.05 and (b.basis, b.history) == ("learned", 28)
    # One wild window among them barely moves the bound (a mean + k sd would jump).
    spiked = [*scores[:-1], 5.0]
    assert learned_bound(spiked, 0.05, 3.5, 14, 0.1).value == pytest.approx(robust_bound(spiked, 0.05))
    assert abs(learned_bound(spiked, 0.05, 3.5, 14, 0.1).value - b.value) < 0.02
    assert np.mean(spiked) + 3.5 * np.std(spiked) - b.value > 1.0
    # Weekly seasonality: 2 windows in 7 wobble 3x more. The bound sits above them.
    weekly = [0.09 if i % 7 in (5, 6) else 0.03 for i in range(28)]
    assert learned_bound(weekly, 0.05, 3.5, 14, 0.1).value > 0.2
    # A quiet feature: the learned value is below the floor, and the floor holds.
    quiet = list(rng.normal(0.01, 0.001, 28))
    q = learned_bound(quiet, 0.1, 3.5, 14, 0.2)
    assert robust_bound(quiet, 0.0) < 0.1 and (q.value, q.basis) == (0.1, "floor")
    # Too little history: the cold-start bound; NaNs do not count.
    cold = learned_bound([0.02] * 13 + [float("nan")] * 3, 0.1, 3.5, 14, 0.2)
    assert (cold.value, cold.basis, cold.history) == (0.2, "cold start", 13)
    # DriftConfig's cold start is twice the floor.
    assert DriftConfig().thresholds.cold_start_factor == 2.0


def _num_history(feature: str, method: str, values: list[float]) -> History:
    return History({(feature, method): {T0 + dt.timedelta(days=i): v for i, v in enumerate(values)}})


def test_compare_judges_the_effect_against_the_learned_bound() -> None:
    """A feature whose ordinary wobble reaches 0.1-0.2 is not flagged at 0.18 (the fixed
    floor flags it); a real shift well above its wobble is."""
    rng = np.random.default_rng(11)
    ref = stats_from_arrays({"x": rng.normal(0, 1, 5000)}, sketch_size=20_000)
    wobbly = stats_from_arrays({"x": rng.normal(0.18, 1, 5000)})
    shifted = stats_from_arrays({"x": rng.normal(0.8, 1, 5000)})
    specs = [FeatureSpec("x", "numerical")]
    past = list(rng.uniform(0.08, 0.2, 28))
    history = _num_history("x", "wasserstein", past)
    fixed = compare(ref, wobbly, specs, DriftConfig()).features[0]
    learned = compare(ref, wobbly, specs, DriftConfig(), history).features[0]
    assert fixed.detected and fixed.effect_bound == 0.1
    assert learned.effect > 0.1 and not learned.detected
    assert learned.effect_bound == pytest.approx(robust_bound(past, 0.1)) and learned.effect_bound > learned.effect
    assert compare(ref, shifted, specs, DriftConfig(), history).features[0].detected
    # The figure the report draws: the bound used, under the effect method.
    recs = {(r.metric, r.labels): r.value for r in drift_records(compare(ref, wobbly, specs, DriftConfig(), history))}
    key = ("data_drift_threshold", (("feature", "x"), ("method", "wasserstein")))
    assert recs[key] == pytest.approx(learned.effect_bound)
    # Windows where x drifted are no wobble: their scores stay out of the history.
    drifted = History(history.scores, {"x": {T0 + dt.timedelta(days=i) for i in range(0, 28, 2)}})
    assert drifted.past_scores("x", "wasserstein") == past[1::2]


def test_below_min_sample_a_feature_is_not_judged() -> None:
    rng = np.random.default_rng(2)
    # ~60 failed requests a day: even a complete change of the error mix is not judged.
    ref = stats_from_arrays(None, {"error_type": rng.choice(["timeout", "server_error"], 420)})
    cur = stats_from_arrays(None, {"error_type": np.array(["rate_limit_exceeded"] * 60)})
    specs = [FeatureSpec("error_type", "categorical", builtin=True)]
    report = compare(ref, cur, specs, DriftConfig())
    f = report.features[0]
    assert (f.judged, f.detected, f.min_sample) == (False, False, 1000)
    assert f.effect > 0.5 and f.p_value_adjusted < 1e-6  # the figures are still computed
    assert any("not judged" in n and "error_type 420 reference vs 60 current < 1,000" in n for n in report.notes)
    recs = {(r.metric, r.labels): r.value for r in drift_records(report)}
    assert recs[("data_drift_judged", (("feature", "error_type"),))] == 0.0
    assert recs[("data_drift_detected", (("feature", "error_type"),))] == 0.0
    # Per-feature override, and the default for other features (300).
    lowered = DriftConfig(min_sample={"features": {"error_type": 50}})
    assert compare(ref, cur, specs, lowered).features[0].detected
    other = compare(ref, cur, [FeatureSpec("error_type", "categorical")], DriftConfig(min_sample={"features": {}}))
    assert other.features[0].judged is False and other.features[0].min_sample == 300
    with pytest.raises(ValueError, match=r"drift.min_sample.features: error_typ is not a drift feature"):
        DriftConfig(min_sample={"features": {"error_typ": 10}})


def _day(rng: np.random.Generator, n: int, tokens_factor: float = 1.0) -> WindowStats:
    tokens = np.maximum(1, rng.lognormal(6.5, 0.6, n)).astype(np.int64) * tokens_factor
    return stats_from_arrays({"input_tokens": tokens}, sketch_size=20_000)


def _sequence(cfg: DriftConfig, days: list[WindowStats], learned: bool) -> list[bool]:
    """Each day against the previous 7, the history kept as the store would keep it."""
    specs = [FeatureSpec("input_tokens", "numerical", builtin=True)]
    parts: list[tuple[dt.datetime, WindowStats]] = []
    history = History()
    out = []
    for i, cur in enumerate(days):
        start = T0 + dt.timedelta(days=i)
        if parts:
            ref = parts[-7:]
            load = ReferenceLoad(merge_stats([p for _, p in ref]), (), len(ref), 0, 0, tuple(ref))
            full, thinned = load.stats, set[str]()
            if cfg.reference_excludes_drifted:
                load, _, thinned = pooled_reference(load, specs, history.drifted, EMBEDDING)
            report = compare_thinned(full, load.stats, thinned, cur, specs, cfg, history if learned else None)
            for r in drift_records(report):
                lab = dict(r.labels)
                if r.metric == "data_drift_score":
                    history.scores.setdefault((lab["feature"], lab["method"]), {})[start] = r.value
                if r.metric == "data_drift_detected" and r.value:
                    history.drifted.setdefault(lab["feature"], set()).add(start)
            out.append(report.features[0].detected)
        parts.append((start, cur))
    return out


def test_a_spike_day_in_the_reference_does_not_make_the_next_days_drift() -> None:
    rng = np.random.default_rng(5)
    days = [_day(rng, 3000) for _ in range(20)] + [_day(rng, 3000, 3.0)] + [_day(rng, 3000) for _ in range(6)]
    new = _sequence(DriftConfig(), days, learned=True)
    old = _sequence(DriftConfig(thresholds={"mode": "fixed"}, reference_excludes_drifted=False), days, learned=False)
    spike = 19  # verdicts start at day 1
    assert new[spike] and old[spike]  # the spike itself is caught either way
    assert not any(new[spike + 1 :]) and not any(new[:spike])
    assert all(old[spike + 1 : spike + 4])  # the old reference kept the spike for days
    # A lasting change: caught on its first day and while the old level holds most of
    # the reference, then the new normal (it does not page forever).
    shifted = [_day(rng, 3000) for _ in range(10)] + [_day(rng, 3000, 2.0) for _ in range(12)]
    verdicts = _sequence(DriftConfig(), shifted, learned=True)
    assert not any(verdicts[:9]) and all(verdicts[9:13]) and not any(verdicts[16:])


def test_embeddings_min_sample_and_learned_auc_bound() -> None:
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((150, 4)).astype(np.float32)
    cur = (rng.standard_normal((150, 4)) + np.array([0.6, 0, 0, 0])).astype(np.float32)
    cfg = DriftConfig(embeddings={"methods": ("domain_classifier",)})
    results, drifted, bound, judged, note = judge_embeddings(ref, cur, cfg)
    assert results[0].statistic > 0.6 and results[0].drifted  # a clear shift, but 150 < 200 rows
    assert (drifted, judged, bound) == (False, False, None)
    assert note is not None and "150 reference vs 150 current rows < drift.embeddings.min_sample 200" in note
    # Enough rows; a history of the AUC's z (its height above 0.5 in null-spread units)
    # wobbling around 1: the bound is learned in z and judged as an AUC at 400 a side.
    ref, cur = rng.standard_normal((400, 4)).astype(np.float32), rng.standard_normal((400, 4)).astype(np.float32)
    past = list(rng.uniform(0.0, 2.0, 20))
    hist = History({(EMBEDDING, AUC_Z): {T0 + dt.timedelta(days=i): v for i, v in enumerate(past)}})
    results, drifted, bound, judged, _ = judge_embeddings(ref, cur, cfg, hist)
    floor = DriftConfig(embeddings={}).embeddings.learned_z_floor  # 4
    want = max(0.55, 0.5 + robust_bound(past, floor, k=3.0) * ed.auc_null_spread(400, 400))
    assert judged and bound is not None and bound.value == pytest.approx(want) and bound.basis == "learned"
    assert results[0].threshold == bound.value and drifted == (results[0].statistic > bound.value)
    # Short history: auc_threshold, but at 400 a side never within 4 null spreads of 0.5.
    _, _, cold, _, _ = judge_embeddings(ref, cur, cfg, History())
    assert cold is not None and cold.basis == "cold start"
    assert cold.value == pytest.approx(0.5 + floor * ed.auc_null_spread(400, 400)) and cold.value > 0.55


def test_the_learned_auc_bound_holds_small_windows_and_catches_a_shift_on_a_big_one() -> None:
    """Weekdays of 750 embedded rows and weekends of 250 (as the enterprise generator of
    bench/alertsim): learned from raw AUCs the bound sat in the weekends' chance wobble
    (0.66 in the calibration) above a real weekday shift (0.5 sigma on one of 16
    dimensions, AUC ~0.62); learned in z, it is an AUC bound for each window's own size:
    the shift is caught, no null window crosses its bound, and a small window's bound
    is the wider one."""
    rng = np.random.default_rng(21)
    # The shipped k (configs/monitoring.yaml drift.thresholds.k).
    cfg = DriftConfig(thresholds={"k": 4.5}, embeddings={"methods": ("domain_classifier",)})
    dim = 16

    def day(n: int, shift: float = 0.0) -> np.ndarray:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        x[:, 0] += shift
        return x

    ref = day(4000)
    hist = History()
    for i in range(28):
        n = 250 if i % 7 in (5, 6) else 750
        results, drifted, _, _, _ = judge_embeddings(ref, day(n), cfg, hist)
        assert not drifted
        [rec] = [r for r in drift_records_of(results) if r.metric == "embedding_drift_auc_z"]
        hist.scores.setdefault((EMBEDDING, AUC_Z), {})[T0 + dt.timedelta(days=i)] = rec.value
    results, drifted, bound, _, _ = judge_embeddings(ref, day(750, 0.5), cfg, hist)
    assert drifted and bound is not None and bound.basis == "learned"
    _, small, small_bound, _, _ = judge_embeddings(ref, day(250), cfg, hist)
    assert not small and small_bound is not None and small_bound.value > bound.value


def drift_records_of(results: tuple[ed.EmbeddingTestResult, ...]) -> list[MetricRecord]:
    return drift_records(DriftReport((), 0.0, False, 0.5, results, False))


# -- through the analyzer and the metrics store ---------------------------------------------


def _frame(days: dict[dt.date, tuple[float, float]], n: int = 1500, seed: int = 9) -> pd.DataFrame:
    """Per day (latency factor, token factor): n requests, ~2% failed."""
    rng = np.random.default_rng(seed)
    parts = []
    for day, (lat, tok) in days.items():
        ts = pd.Timestamp(day) + pd.to_timedelta(np.sort(rng.uniform(0, 86_399, n)), unit="s")
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": ts,
                    "model": rng.choice(["gpt-4o", "gpt-4o-mini"], n, p=[0.7, 0.3]),
                    "endpoint": rng.choice(["chat", "search"], n),
                    "status": np.where(rng.random(n) < 0.02, rng.choice(["timeout", "server_error"], n), "ok"),
                    "latency_seconds": rng.lognormal(-0.2, 0.5, n) * lat,
                    "input_tokens": (np.maximum(1, rng.lognormal(6.5, 0.6, n)) * tok).astype(np.int64),
                    "output_tokens": np.maximum(1, rng.lognormal(5.0, 0.7, n)).astype(np.int64),
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    df["request_id"] = [f"r{i}" for i in range(len(df))]
    return df


def _fig(res: AnalyzerResult, metric: str, **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    (value,) = [r.value for r in res.records if r.metric == metric and r.labels == want]
    return value


def test_the_analyzer_learns_from_stored_figures_and_leaves_a_drifted_day_out(tmp_path: Path) -> None:
    d = [DAY - dt.timedelta(days=i) for i in (3, 2, 1, 0)]
    # DAY-1 is a cost spike (tokens x3); DAY itself is normal in tokens, latency x2.
    url = write_duckdb(tmp_path / "wh.duckdb", _frame({d[0]: (1, 1), d[1]: (1, 1), d[2]: (1, 3), d[3]: (2, 1)}))
    cfg = make_config(url, reference={"previous_windows": 3}, drift={"embeddings": None})
    store = Store(cfg)
    store.ensure()
    # The store as 28 earlier runs left it: latency's own wobble, and the spike day's
    # verdict on input_tokens (drifted).
    rng = np.random.default_rng(1)
    past = list(rng.gamma(4.0, 0.02, 28))
    for i, v in enumerate(past):
        w = daily_window(DAY - dt.timedelta(days=28 - i))
        recs = [MetricRecord.of("data_drift_score", v, feature="latency_seconds", method="wasserstein")]
        if w.start.date() == d[2]:
            recs.append(MetricRecord.of("data_drift_detected", 1.0, feature="input_tokens"))
        store.replace_window(w, recs, f"run{i}")
    res = analyze_drift(open_window(cfg, daily_window(DAY), store))
    report = res.details["report"]
    by = {f.feature: f for f in report.features}
    # Learned from the stored scores, as the reference computation says.
    want = robust_bound(past, 0.1)
    assert _fig(res, "data_drift_threshold", feature="latency_seconds", method="wasserstein") == pytest.approx(want)
    assert by["latency_seconds"].bound is not None and by["latency_seconds"].bound.history == 28
    assert by["latency_seconds"].effect > want and _fig(res, "data_drift_detected", feature="latency_seconds") == 1
    # input_tokens: the spike day is left out of its reference, so a normal day is normal.
    assert by["input_tokens"].n_reference == by["latency_seconds"].n_reference * 2 // 3
    assert any(
        f"reference of input_tokens: 1 window(s) where it drifted left out ({d[2]:%Y-%m-%d}" in n for n in res.notes
    )
    assert _fig(res, "data_drift_detected", feature="input_tokens") == 0
    # Without history (a new feature) the cold-start bound: twice the floor.
    assert _fig(res, "data_drift_threshold", feature="output_tokens", method="wasserstein") == 0.2
    # ~30 failed requests a day: the error mix is not judged, and the summary says so.
    assert _fig(res, "data_drift_judged", feature="error_type") == 0
    assert _fig(res, "data_drift_judged", feature="model") == 1
    summary = next(n for n in res.notes if n.startswith("drift: "))
    assert "not judged (too few rows): error_type" in summary
    # The old behaviour on the same store: the spike day poisons the reference.
    old = make_config(
        url,
        reference={"previous_windows": 3},
        drift={"embeddings": None, "thresholds": {"mode": "fixed"}, "reference_excludes_drifted": False},
    )
    before = analyze_drift(open_window(old, daily_window(DAY), Store(old)))
    assert _fig(before, "data_drift_detected", feature="input_tokens") == 1
    assert _fig(before, "data_drift_threshold", feature="latency_seconds", method="wasserstein") == 0.1


def test_scaled_bound_is_the_wider_of_the_raw_and_the_size_scaled_learned_bound() -> None:
    """thresholds.scale rows: robust_bound of the raw past effects, or robust_bound of
    effect x sqrt(nm/(n+m)) over the past windows divided by this window's
    sqrt(nm/(n+m)), whichever is wider; the floor still holds; a store with only raw
    scores (written before) is learned from as before."""
    rng = np.random.default_rng(5)
    z = list(rng.gamma(4.0, 0.5, 28))
    raw = list(rng.gamma(4.0, 0.01, 28))
    thin, thick = size_scale(28_000, 1_300), size_scale(28_000, 20_000)
    assert thin == pytest.approx(np.sqrt(28_000 * 1_300 / 29_300))
    b = scaled_bound(z, raw, thin, 0.0, 3.5, 14, 0.2)
    assert robust_bound(z, 0.0) / thin > robust_bound(raw, 0.0)
    assert (
        b.value == pytest.approx(robust_bound(z, 0.0) / thin, rel=1e-12) and b.basis == "learned at this window's size"
    )
    wide = scaled_bound(z, raw, thick, 0.0, 3.5, 14, 0.2)
    assert robust_bound(z, 0.0) / thick < robust_bound(raw, 0.0)
    assert (wide.value, wide.basis) == (pytest.approx(robust_bound(raw, 0.0), rel=1e-12), "learned")
    assert scaled_bound(z, raw, thin, 1.0, 3.5, 14, 0.2).value == 1.0  # the floor
    old = scaled_bound(z[:5], raw, thin, 0.0, 3.5, 14, 0.2)
    assert old.value == pytest.approx(robust_bound(raw, 0.0), rel=1e-12)  # too few scaled: the raw history
    assert scaled_bound([], raw[:5], thin, 0.1, 3.5, 14, 0.2).basis == "cold start"


def test_a_thin_window_is_judged_at_its_own_sampling_spread() -> None:
    """A month of 6,000-row weekdays, then thin 300-row days, every day from one
    distribution: learned from raw effects alone, the bound is the weekdays' smaller
    chance wobble and null thin days cross it; with the size-scaled bound they do not.
    A weekday keeps the raw bound, and a real weekday shift is still caught."""
    rng = np.random.default_rng(21)
    specs = [FeatureSpec("input_tokens", "numerical", builtin=True)]
    # Floor 0 and no p-value gate: the learned bound alone decides.
    cfgs = {
        s: DriftConfig(effect_floors={"numerical": 0.0}, p_value=0.999, thresholds={"scale": s})
        for s in ("rows", "none")
    }

    def day(n: int, shift: float = 1.0) -> WindowStats:
        return stats_from_arrays({"input_tokens": np.exp(rng.normal(6.5, 0.6, n)) * shift}, sketch_size=20_000)

    ref = merge_stats([day(4_000) for _ in range(7)])
    history = History()
    for i in range(28):
        for r in drift_records(compare(ref, day(6_000), specs, cfgs["rows"])):
            if r.label("method") == "wasserstein":
                key = {"data_drift_score": "wasserstein", "data_drift_scaled_score": SCALED + "wasserstein"}.get(
                    r.metric
                )
                if key:
                    history.scores.setdefault(("input_tokens", key), {})[T0 + dt.timedelta(days=i)] = r.value
    assert len(history.past_scores("input_tokens", SCALED + "wasserstein")) == 28
    flagged = {s: 0 for s in cfgs}
    for _ in range(150):
        thin = day(300)
        for s, cfg in cfgs.items():
            flagged[s] += compare(ref, thin, specs, cfg, history).features[0].detected
    assert flagged["none"] >= 15 and flagged["rows"] <= 1  # 24 and 0 of 150 with this seed
    weekday = [compare(ref, day(6_000), specs, cfg, history).features[0] for cfg in cfgs.values()]
    assert weekday[0].effect_bound == pytest.approx(weekday[1].effect_bound)
    assert weekday[0].bound is not None and weekday[0].bound.basis == "learned"
    assert compare(ref, day(6_000, 1.1), specs, cfgs["rows"], history).features[0].detected

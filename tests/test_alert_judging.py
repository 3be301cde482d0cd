"""Judging a series: learned bounds (against a numpy reference), their floor and a zero
spread, growth and weekly seasonality that do not page, minimum evidence, quality drops
judged with their sampling error (against statsmodels), baselines that leave out the
windows where the alert was on, and `unless`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from aimon.config import Config, load_config
from aimon.config.alerts import AlertRule
from aimon.records import MetricRecord, labels_json
from aimon.store.alerts import AlertStore
from aimon.store.metrics import Store
from aimon.tasks.alerts.pipeline import AlertReport, alert_window
from aimon.tasks.alerts.rules import evaluate_rule, judge, previous_windows
from aimon.windows import daily_window
from tests.conftest import make_config

REPO = Path(__file__).resolve().parent.parent
D0 = dt.date(2026, 1, 5)  # a Monday
NOW = dt.datetime(2027, 6, 1)


def rule(**kw: Any) -> AlertRule:
    return AlertRule.model_validate({"name": "R", "metric": "m", "op": ">", **kw})


def shipped(name: str) -> AlertRule:
    [r] = [r for r in load_config(REPO / "configs" / "monitoring.yaml").alerts.rules if r.name == name]
    return r


# -- the learned bound -------------------------------------------------------------------------


def reference_bound(
    hist: np.ndarray, phases: np.ndarray, phase: int, k: float, floor: float | None, log: bool = False
) -> float:
    """The learned bound written out in numpy, for positive values: centre = median of
    the same-phase windows (when >= 3 of them); residuals = each window's leave-one-out
    deviation from the median of the rest of its phase group, as a share of that
    median; spread = their SD after dropping those beyond 3.5 x 1.4826 MAD, times the
    centre; the farther of centre + k spread and floor x centre. `log`: the same on
    log(hist), residuals in log units, the bound exp(log centre + k spread)."""
    values = np.log(hist) if log else hist
    same = values[phases == phase]
    seasonal = len(same) >= 3
    centre = float(np.median(same)) if seasonal else float(np.median(values))
    groups = [np.flatnonzero(phases == p) for p in np.unique(phases)] if seasonal else [np.arange(len(hist))]
    res = []
    for g in groups:
        for i in g if len(g) >= 2 else []:
            rest = np.median(values[np.setdiff1d(g, [i])])
            res.append(values[i] - rest if log else (values[i] - rest) / rest)
    r = np.array(res)
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))
    kept = r[np.abs(r - np.median(r)) <= 3.5 * mad]
    if log:
        out = float(np.exp(centre + k * max(float(np.std(kept, ddof=1)), np.log(1.01))))
        centre = float(np.exp(centre))
    else:
        out = centre + k * max(float(np.std(kept, ddof=1)) * centre, 0.01 * abs(centre))
    return max(out, floor * centre) if floor is not None else out


@pytest.mark.parametrize(("seasonal", "scale"), [(True, "linear"), (False, "linear"), (True, "log"), (False, "log")])
def test_learned_bound_matches_a_numpy_reference(seasonal: bool, scale: str) -> None:
    rng = np.random.default_rng(5)
    r = rule(baseline={"method": "learned", "seasonal": seasonal, "scale": scale})
    floored = rule(baseline={"method": "learned", "factor": 1.3, "seasonal": seasonal, "scale": scale})
    log = scale == "log"
    for _ in range(40):
        n = int(rng.integers(7, 29))
        hist = rng.lognormal(3.0, 0.2, size=n) * (1 + 0.4 * (np.arange(n) % 7 == 2))
        phases = np.arange(n) % 7
        phase = int(rng.integers(0, 7))
        value = float(rng.lognormal(3.2, 0.3))
        use = phases if seasonal else np.zeros(n, dtype=int)
        c = judge(r, value, list(hist), phases=list(phases), phase=phase)
        want = reference_bound(hist, use, phase if seasonal else 0, 5.0, None, log)
        assert c.bound == pytest.approx(want, rel=1e-9)
        assert c.breaching is (value > want)
        cf = judge(floored, value, list(hist), phases=list(phases), phase=phase)
        assert cf.bound == pytest.approx(reference_bound(hist, use, phase if seasonal else 0, 5.0, 1.3, log), rel=1e-9)


def test_the_ratio_floor_holds_for_a_quiet_series_and_k_widens_a_noisy_one() -> None:
    r = rule(baseline={"method": "learned", "factor": 1.5})
    quiet = [100.0 + d for d in (0.5, -0.3, 0.2, -0.1, 0.4, 0.0, -0.2, 0.1)]
    c = judge(r, 140.0, quiet)
    assert c.bound == pytest.approx(1.5 * np.median(quiet)) and not c.breaching
    assert judge(r, 151.0, quiet).breaching
    noisy = [100.0, 160.0, 70.0, 130.0, 90.0, 150.0, 60.0, 120.0]
    cn = judge(r, 160.0, noisy)
    assert cn.bound is not None and cn.bound > 1.5 * np.median(noisy) and not cn.breaching  # 1.5x alone would page
    down = rule(op="<", baseline={"method": "learned", "percent": 10})
    assert judge(down, 95.0, quiet).bound == pytest.approx(0.9 * np.median(quiet))


def test_a_constant_history_does_not_make_the_bound_its_centre() -> None:
    r = rule(baseline={"method": "learned"})
    c = judge(r, 10.2, [10.0] * 28)
    # min_spread_percent 1, on the log scale (a positive series): 10 x 1.01^5.
    assert c.bound == pytest.approx(10.0 * 1.01**5) and not c.breaching
    assert judge(r, 10.6, [10.0] * 28).breaching
    linear = rule(baseline={"method": "learned", "scale": "linear"})
    assert judge(linear, 10.2, [10.0] * 28).bound == pytest.approx(10.0 + 5 * 0.01 * 10.0)
    # Mostly zero with a few blips: the MAD is 0, so the blips are the spread (plain SD).
    blips = [0.0] * 20 + [0.02, 0.0, 0.03, 0.0, 0.01, 0.0, 0.0, 0.02]
    cb = judge(rule(baseline={"method": "learned"}), 0.05, blips)
    assert cb.spread is not None and cb.spread > 0 and cb.bound is not None and cb.bound > 0.03
    absolute = rule(baseline={"method": "learned", "min_spread": 0.5})
    assert judge(absolute, 2.0, [0.0] * 28).bound == pytest.approx(2.5)


def test_too_few_windows_to_learn_a_spread_judges_by_the_widened_floor_over_the_highest_window() -> None:
    # The floor's margin doubled (cold_start_factor 2): 11 + 2 x 5.5.
    r = rule(baseline={"method": "learned", "factor": 1.5})
    c = judge(r, 23.0, [10.0, 11.0, 9.0])
    assert c.note is None and c.bound == pytest.approx(22.0) and c.breaching and c.baseline == 10.0
    assert not judge(r, 21.0, [10.0, 11.0, 9.0]).breaching  # 1.9x the highest: not yet
    drop = rule(op="<", baseline={"method": "learned", "percent": 10})
    assert judge(drop, 7.0, [10.0, 11.0, 9.0]).bound == pytest.approx(7.2)  # 20% under the lowest
    plain = rule(baseline={"method": "learned", "factor": 1.5, "cold_start_factor": 1.0})
    assert judge(plain, 17.0, [10.0, 11.0, 9.0]).bound == pytest.approx(16.5)
    # Once learn_windows windows are stored, the learned bound (and the plain floor) judges.
    assert judge(r, 17.0, [10.0, 11.0, 9.0, 10.0, 10.5, 9.5, 10.0]).breaching
    bare = rule(baseline={"method": "learned"})
    assert judge(bare, 16.0, [10.0, 11.0, 9.0]).note == "3 of the 7 previous windows needed for a baseline"


def daily_series(days: int, rng: np.random.Generator, noise: float = 0.08) -> list[float]:
    """Daily spend: +50% a year, weekends 40% lower, lognormal day noise."""
    t = np.arange(days)
    weekday = np.array([(D0 + dt.timedelta(days=int(d))).weekday() for d in t])
    return list(100.0 * 1.5 ** (t / 365) * np.where(weekday >= 5, 0.6, 1.0) * rng.lognormal(0, noise, days))


def judge_days(r: AlertRule, values: list[float], first: int) -> list[bool]:
    """Judge each day from `first` on against the days before it, as the pipeline does."""
    out = []
    windows = [daily_window(D0 + dt.timedelta(days=d)) for d in range(len(values))]
    lj = labels_json({"model": "a"})
    hist = {(lj, w.start): v for w, v in zip(windows, values, strict=True)}
    span = r.baseline.span if r.baseline else 0
    for d in range(first, len(values)):
        prev = windows[d - 1 :: -1][:span]
        [j] = evaluate_rule(r, windows[d], [({"model": "a"}, values[d])], hist, prev)
        out.append(j.condition.breaching)
    return out


def test_growth_and_weekly_seasonality_do_not_page_and_a_spike_does() -> None:
    rng = np.random.default_rng(20)
    r = rule(baseline={"method": "learned"})  # no floor: the learned bound alone
    values = daily_series(365 + 28, rng)
    assert sum(judge_days(r, values, 28)) <= 1
    # A doubled Tuesday pages, and so does a doubled Saturday, though that is only 1.2x a
    # weekday's level: the centre is the same weekday's median, not the week's.
    spiked = list(values)
    assert (D0 + dt.timedelta(days=99)).weekday() == 1 and (D0 + dt.timedelta(days=208)).weekday() == 5
    spiked[99] *= 2.0
    spiked[208] *= 2.0
    flags = judge_days(r, spiked, 28)
    assert flags[99 - 28] and flags[208 - 28]
    # Centred on the whole week instead, the weekend swing hides the Saturday.
    flat = rule(baseline={"method": "learned", "seasonal": False})
    assert not judge_days(flat, spiked, 28)[208 - 28]
    # The shipped CostSpike (learned, 1.5x floor) stays quiet on the normal year too.
    assert sum(judge_days(shipped("CostSpike").model_copy(update={"unless": ()}), values, 28)) == 0


def test_on_noisy_spend_the_log_scale_holds_the_false_breaches_that_a_linear_bound_lets_through() -> None:
    """15% lognormal day noise (the simulated consumer app has 12% on its volume alone):
    a linear bound, centre x (1 + 5 x spread), is crossed by chance several times as
    often as centre x exp(5 x spread of the logs), the shipped rules' `scale: auto` for a
    positive series; both still catch a quadrupled day."""
    rng = np.random.default_rng(7)
    rules = {
        "linear": rule(baseline={"method": "learned", "scale": "linear"}),
        "log": rule(baseline={"method": "learned"}),
    }
    false = dict.fromkeys(rules, 0)
    caught = dict.fromkeys(rules, 0)
    days = 0
    for _ in range(60):
        values = daily_series(28 + 150, rng, noise=0.15)
        for d in range(28, len(values)):
            hist = values[d - 28 : d][::-1]
            phases = [(D0 + dt.timedelta(days=d - 1 - i)).weekday() for i in range(28)]
            phase = (D0 + dt.timedelta(days=d)).weekday()
            for name, r in rules.items():
                false[name] += judge(r, values[d], hist, phases=phases, phase=phase).breaching
                caught[name] += judge(r, 4 * values[d], hist, phases=phases, phase=phase).breaching
            days += 1
    assert false["linear"] >= 6 and false["linear"] >= 3 * false["log"], false
    assert min(caught.values()) >= 0.97 * days, caught


# -- minimum evidence and unless ---------------------------------------------------------------


def test_min_sample_leaves_a_thin_series_not_judged_and_says_so() -> None:
    r = shipped("ErrorRateHigh").model_copy(update={"baseline": None})  # the threshold alone
    w = daily_window(D0)
    cur = [({"model": "a", "endpoint": "__all__"}, 0.5), ({"model": "b", "endpoint": "__all__"}, 0.5)]
    requests = [
        ({"model": "a", "endpoint": "__all__"}, 40.0),
        ({"model": "a", "endpoint": "chat"}, 4000.0),  # another series: not a's total
        ({"model": "b", "endpoint": "__all__"}, 5000.0),
    ]
    a, b = evaluate_rule(r, w, cur, {}, [], context={"llm_requests": {w.start: requests}})
    assert not a.condition.breaching and not a.judged and a.state == "ok"
    assert a.condition.note == "not judged: llm_requests = 40, under min_sample 300"
    assert b.judged and b.state == "firing" and b.condition.n == 5000
    [c] = evaluate_rule(r, w, cur[:1], {}, [], context={})
    assert c.condition.note == "not judged: no llm_requests figure for this series (min_sample 300)"


def test_min_sample_reads_quality_sample_size_of_the_same_figure() -> None:
    r = shipped("QualityDrop")
    assert r.min_sample is not None and r.min_sample.metric == "quality_sample_size"
    w = daily_window(D0)
    labels = {"model": "a", "average": "macro"}
    sizes = [
        ({"metric": "model_f1", "model": "a", "average": "macro"}, 80.0),
        ({"metric": "model_accuracy", "model": "a"}, 5000.0),  # another figure's n
    ]
    [j] = evaluate_rule(r, w, [(labels, 0.1)], {}, [], context={"quality_sample_size": {w.start: sizes}})
    assert j.condition.note == "not judged: quality_sample_size = 80, under min_sample 100"


def test_unless_skips_the_series_with_a_matching_figure_only() -> None:
    r = rule(
        metric="llm_cost_usd",
        threshold=5.0,
        labels={"model": "!=__all__"},
        unless=[{"metric": "deployment_rollout_active", "equal": ["model"]}],
    )
    w = daily_window(D0)
    cur = [({"model": "new", "endpoint": "chat"}, 50.0), ({"model": "old", "endpoint": "chat"}, 50.0)]
    active = [({"model": "new"}, 1.0), ({"model": "old"}, 0.0)]
    new, old = evaluate_rule(r, w, cur, {}, [], context={"deployment_rollout_active": {w.start: active}})
    assert new.condition.note == "not judged: deployment_rollout_active{model=new} = 1 (unless)" and not new.judged
    assert old.judged and old.state == "firing"  # its figure is 0: the rollout is not on
    [plain] = evaluate_rule(r, w, cur[:1], {}, [], context={})
    assert plain.state == "firing"


def test_unless_with_series_matchers_holds_off_only_the_series_it_selects() -> None:
    """The shipped DataDriftDetected: during a rollout the model-mix drift is held off, a
    drifting language is still judged; a drift the analyzer could not judge is not judged."""
    r = rule(
        metric="data_drift_detected",
        op=">=",
        threshold=1.0,
        min_sample={"metric": "data_drift_judged", "value": 1},
        unless=[{"metric": "deployment_rollout_active", "series": {"feature": "model"}}],
    )
    w = daily_window(D0)
    cur = [({"feature": "model"}, 1.0), ({"feature": "language"}, 1.0), ({"feature": "error_type"}, 0.0)]
    judged = [({"feature": "model"}, 1.0), ({"feature": "language"}, 1.0), ({"feature": "error_type"}, 0.0)]
    ctx = {"deployment_rollout_active": {w.start: [({"model": "new"}, 1.0)]}, "data_drift_judged": {w.start: judged}}
    model, language, error_type = evaluate_rule(r, w, cur, {}, [], context=ctx)
    assert model.condition.note == "not judged: deployment_rollout_active{model=new} = 1 (unless)"
    assert language.judged and language.state == "firing"
    assert not error_type.judged and "data_drift_judged = 0, under min_sample 1" in (error_type.condition.note or "")
    with pytest.raises(ValueError, match=r"unless\.0\.series"):
        rule(metric="m", threshold=1.0, unless=[{"metric": "x", "series": {"feature": "=~("}}])


# -- quality drops and their sampling error ----------------------------------------------------


def test_binomial_uncertainty_matches_statsmodels_and_only_a_well_sampled_drop_fires() -> None:
    r = rule(
        metric="model_f1",
        op="<",
        baseline={"windows": 7, "percent": 10, "uncertainty": "binomial"},
        min_sample={"metric": "quality_sample_size", "value": 30},
    )
    hist, p = [0.90] * 7, 0.90
    alpha = 2 * norm.sf(3.5)  # a two-sided interval whose half-width is 3.5 SE
    for n_window, n_base in [(60, 420), (200, 1400), (5000, 35000)]:
        lo_w, _ = proportion_confint(p * n_window, n_window, alpha=alpha, method="normal")
        lo_b, _ = proportion_confint(p * n_base, n_base, alpha=alpha, method="normal")
        want = p - max(np.hypot(p - lo_w, p - lo_b), 0.10 * p)
        c = judge(r, 0.80, hist, n=n_window, n_baseline=n_base)
        assert c.bound == pytest.approx(want, rel=1e-9)
    # 0.80 is 11% below 0.90: on 60 labelled rows that is sampling noise, on 5,000 a drop.
    assert not judge(r, 0.80, hist, n=60, n_baseline=420).breaching
    assert judge(r, 0.80, hist, n=5000, n_baseline=35000).breaching


def test_feedback_drop_pages_a_model_users_stopped_finding_helpful_not_a_thin_or_noisy_share() -> None:
    """The shipped FeedbackDrop: a model's helpful share falling from ~0.80 to 0.40 on
    45 feedback rows pages; the same fall on 20 rows is not judged, and an ordinary
    day's share (binomial noise of 45 rows around 0.80) does not page."""
    r = shipped("FeedbackDrop")
    rng = np.random.default_rng(3)
    hist = list(rng.binomial(45, 0.8, size=28) / 45)
    assert judge(r, 0.40, hist, n=45, n_baseline=45 * 28).breaching
    normal = rng.binomial(45, 0.8, size=2000) / 45
    false = sum(judge(r, float(v), hist, n=45, n_baseline=45 * 28).breaching for v in normal)
    assert false <= 2  # 3.5 SE one-sided: ~1 in 4,000 windows
    w = daily_window(D0)
    sizes = [({"metric": "feedback_helpful_ratio", "model": "a"}, 20.0)]
    [j] = evaluate_rule(r, w, [({"model": "a"}, 0.4)], {}, [], context={"quality_sample_size": {w.start: sizes}})
    assert j.condition.note == "not judged: quality_sample_size = 20, under min_sample 30"


def test_error_rate_high_pages_a_burst_not_a_blip_on_a_model_that_normally_fails_more() -> None:
    """The shipped ErrorRateHigh: 5% and 3x the model's usual rate (its 28-window median).
    A model failing ~2.5% a day (lognormal day noise) with a 30-minute rate-limit blip at
    its peak (5.8% on the day) does not page, whichever weekday; a 6-hour burst (9%) does.
    At a 1.5% base the 5% line is the bound: 5.5% pages."""
    r = shipped("ErrorRateHigh")
    rng = np.random.default_rng(5)
    usual = list(0.025 * rng.lognormal(0, 0.15, 28))
    phases = [d % 7 for d in range(28)]
    for phase in range(7):
        assert not judge(r, 0.058, usual, phases=phases, phase=phase).breaching
        assert judge(r, 0.09, usual, phases=phases, phase=phase).breaching
    low = list(0.015 * rng.lognormal(0, 0.15, 28))
    c = judge(r, 0.055, low)
    assert c.breaching and c.bound is not None and c.bound < 0.05  # the threshold is the line
    assert not judge(r, 0.048, low).breaching
    # A new model: no history, the 5% line alone; 3 windows, 3x the highest of them.
    first = judge(r, 0.06, [])
    assert first.breaching and first.bound == 0.05 and first.note is None
    assert not judge(r, 0.07, [0.02, 0.025, 0.022]).breaching and judge(r, 0.08, [0.02, 0.025, 0.022]).breaching


def test_the_baseline_n_is_the_sum_over_the_baseline_windows() -> None:
    r = rule(
        metric="model_f1",
        op="<",
        baseline={"windows": 3, "percent": 1, "uncertainty": "binomial"},
        min_sample={"metric": "quality_sample_size", "value": 10},
    )
    w = daily_window(D0 + dt.timedelta(days=10))
    prev = previous_windows(w, r.baseline.span if r.baseline else 0)
    labels = {"model": "a"}
    lj = labels_json(labels)
    hist = {(lj, p.start): 0.9 for p in prev[:3]}
    n = {p.start: [({"metric": "model_f1", "model": "a"}, 100.0)] for p in prev[:3]}
    n[w.start] = [({"metric": "model_f1", "model": "a"}, 50.0)]
    [j] = evaluate_rule(r, w, [(labels, 0.85)], hist, prev, context={"quality_sample_size": n})
    se = np.sqrt(0.09 / 50 + 0.09 / 300)
    assert j.condition.bound == pytest.approx(0.9 - 3.5 * se)


def test_a_binomial_baseline_is_the_pooled_share_of_its_rows() -> None:
    """The centre of a proportion's baseline is the share pooled over the baseline
    windows' rows (successes / rows), not the median window: 0.9 on four windows of 40
    rows and 0.7 on three of 400 pool to (4 x 36 + 3 x 280) / 1,360."""
    r = rule(
        metric="feedback_helpful_ratio",
        op="<",
        baseline={"windows": 7, "percent": 10, "uncertainty": "binomial"},
        min_sample={"metric": "quality_sample_size", "value": 30},
    )
    hist, ns = [0.9] * 4 + [0.7] * 3, [40.0] * 4 + [400.0] * 3
    c = judge(r, 0.5, hist, n=400, n_baseline=sum(ns), n_history=ns)
    pooled = (4 * 36 + 3 * 280) / 1360
    assert c.baseline == pytest.approx(pooled)
    se = np.sqrt(pooled * (1 - pooled) * (1 / 400 + 1 / 1360))
    assert c.bound == pytest.approx(pooled - max(3.5 * se, 0.1 * pooled))


def test_thin_baseline_windows_are_left_out_so_weekend_noise_does_not_hide_a_weekday_drop() -> None:
    """The shipped FeedbackDrop: weekdays of 40 feedback rows at a helpful share of ~0.8,
    weekends of 6 rows (binomial: 0.5 to 1.0 by chance). Those weekends are not judged (under
    min_sample 30), and they are not the series' normal spread either: a weekday at 0.45
    pages. Counted in, they would have widened the learned bound below 0.45."""
    r = shipped("FeedbackDrop")
    w = daily_window(D0 + dt.timedelta(days=35))  # a Monday
    prev = previous_windows(w, r.baseline.span if r.baseline else 0)
    labels = {"model": "a"}
    lj = labels_json(labels)
    rng = np.random.default_rng(4)
    hist, n = {}, {}
    for p in prev[:28]:
        weekend = p.start.weekday() >= 5
        hist[(lj, p.start)] = float(rng.binomial(6, 0.8) / 6 if weekend else rng.binomial(40, 0.8) / 40)
        n[p.start] = [({"metric": "feedback_helpful_ratio", "model": "a"}, 6.0 if weekend else 40.0)]
    n[w.start] = [({"metric": "feedback_helpful_ratio", "model": "a"}, 40.0)]
    [j] = evaluate_rule(r, w, [(labels, 0.45)], hist, prev, context={"quality_sample_size": n})
    assert j.condition.breaching and j.condition.baseline == pytest.approx(0.8, abs=0.03)
    # The same history, every window counted (min_sample met everywhere): no page.
    n_all = {start: [(lab, 40.0) for lab, _ in sizes] for start, sizes in n.items()}
    [k] = evaluate_rule(r, w, [(labels, 0.45)], hist, prev, context={"quality_sample_size": n_all})
    assert not k.condition.breaching


# -- baselines an incident cannot poison -------------------------------------------------------


def store_config(tmp_path: Path, **baseline: Any) -> Config:
    quality = {
        "name": "QualityDrop",
        "metric": "model_f1",
        "op": "<",
        "baseline": {"windows": 7, "percent": 10, **baseline},
        "min_sample": {"metric": "quality_sample_size", "value": 100},
    }
    return make_config(f"sqlite:///{tmp_path / 'store.sqlite'}", alerts={"rules": [quality]})


def run_day(cfg: Config, d: int, f1: float, n: float = 500.0) -> AlertReport:
    w = daily_window(D0 + dt.timedelta(days=d))
    store = Store(cfg)
    store.ensure()
    recs = [
        MetricRecord.of("model_f1", f1, model="a"),
        MetricRecord.of("quality_sample_size", n, metric="model_f1", model="a"),
    ]
    store.replace_window(w, recs, f"run{d}")
    return alert_window(cfg, store, w, f"run{d}", send=False, now=NOW)


def statuses(cfg: Config) -> dict[int, str]:
    return {(e.window_start.date() - D0).days: e.status for e in AlertStore(cfg).events_between()}


def test_a_long_quality_drop_stays_firing_instead_of_resolving_by_catch_up(tmp_path: Path) -> None:
    kept = store_config(tmp_path / "kept")
    caught = store_config(tmp_path / "caught", exclude_alerting=False)
    for cfg in (kept, caught):
        for d in range(16):
            run_day(cfg, d, 0.90 if d < 8 else 0.60)
    # Left out of the baseline, the broken days never become "normal": firing to the end.
    assert statuses(kept) == dict.fromkeys(range(8, 16), "firing")
    # The old behaviour: after 4 broken days the 7-window median is the broken level.
    old = statuses(caught)
    assert old[8] == "firing" and "resolved" in old.values()
    # The run summary says the baseline left windows out; a rerun judges the same way.
    again = run_day(kept, 15, 0.60)
    assert any("without the windows where their alert was pending or firing" in n for n in again.notes)
    assert statuses(kept)[15] == "firing"
    # And recovery still resolves it, against the healthy baseline.
    for d in (16, 17):
        run_day(kept, d, 0.90)
    assert statuses(kept)[17] == "resolved"


def test_thin_windows_are_reported_as_not_judged_in_the_run_summary(tmp_path: Path) -> None:
    cfg = store_config(tmp_path)
    for d in range(5):
        run_day(cfg, d, 0.9)
    report = run_day(cfg, 5, 0.3, n=40)
    assert report.firing == ()
    assert any(
        "not judged (min_sample)" in n and "quality_sample_size = 40, under min_sample 100" in n for n in report.notes
    )


# -- config ------------------------------------------------------------------------------------


def test_config_errors_name_the_key() -> None:
    base = {"name": "R", "metric": "m", "op": ">"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"baseline": {"factor": 1.5, "k": 3}}, "k: only with method: learned"),
        ({"baseline": {"method": "learned", "factor": 1.5, "percent": 5}}, "at most one of factor or percent"),
        ({"baseline": {"percent": 10, "uncertainty": "binomial"}}, "baseline.uncertainty needs min_sample"),
        ({"baseline": {"percent": 10, "z": 3}}, "z: only with uncertainty: binomial"),
        ({"threshold": 1, "min_sample": {"metric": "llm_requests", "value": 0}}, "greater than 0"),
        ({"threshold": 1, "unless": [{"metric": "x", "on": ["model"]}]}, r"unless\.0\.on\n  Extra inputs"),
    ]
    for bad, msg in cases:
        with pytest.raises(ValueError, match=msg):
            AlertRule.model_validate({**base, **bad})
    learned = rule(baseline={"method": "learned"})
    assert learned.baseline is not None and (learned.baseline.windows, learned.baseline.span) == (28, 84)

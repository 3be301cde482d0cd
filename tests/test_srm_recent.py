"""Sample ratio mismatch over the recent windows as well as cumulatively: a break late
in a long experiment is caught within a few windows, a true split keeps its designed
false-flag rate per look (Bonferroni across the spans)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats

from aimon.config import ExperimentConfig
from aimon.stats.abtests import Moments
from aimon.stats.srm import srm_spans, srm_test
from aimon.store.abstats import ASSIGNMENTS
from aimon.tasks.abtest.looks import srm_only
from aimon.tasks.abtest.records import experiment_notes, experiment_records, span_label
from aimon.windows import Window, window_containing

EXP = ExperimentConfig.model_validate(
    {"name": "e", "metrics": [{"name": "m", "type": "continuous", "column": "latency_seconds", "good": "lower"}]}
)


def test_each_span_is_scipys_chi_square_of_its_windows_at_a_bonferroni_level() -> None:
    counts = [[2500, 2500], [2480, 2520], [2600, 2400], [2400, 2500], [2550, 2450], [2500, 2510], [2490, 2500]]
    counts += [[2610, 2390], [2640, 2360]]  # nine windows, the last two broken
    spans = srm_spans(counts, [0.5, 0.5], 0.001, (1, 7))
    assert [s.windows for s in spans] == [None, 1, 7]
    arr = np.array(counts)
    for s, part in zip(spans, [arr, arr[-1:], arr[-7:]], strict=True):
        ref = stats.chisquare(part.sum(axis=0))
        assert s.result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
        assert s.result.statistic == pytest.approx(ref.statistic, rel=1e-10)
        assert s.result.threshold == pytest.approx(0.001 / 3)
        assert s.result.mismatch == (ref.pvalue < 0.001 / 3)
    # The last window alone is off (2640/2360: p ~ 7e-5); cumulatively it is not.
    assert spans[1].result.mismatch and not spans[0].result.mismatch
    # Uneven splits and three variants: expected counts from the weights.
    three = srm_spans([[900, 1000, 2100], [950, 1020, 2030]], [1, 1, 2], 0.001, (1,))
    ref = stats.chisquare([1850, 2020, 4130], f_exp=np.array([0.25, 0.25, 0.5]) * 8000)
    assert three[0].result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert stats.chisquare([950, 1020, 2030], f_exp=np.array([0.25, 0.25, 0.5]) * 4000).pvalue == pytest.approx(
        three[1].result.p_value, rel=1e-10
    )


def test_a_span_as_long_as_the_experiment_is_left_out() -> None:
    # With 3 windows, the 7-window span would repeat the cumulative test (and spend alpha).
    spans = srm_spans([[100, 100]] * 3, [0.5, 0.5], 0.001, (1, 7))
    assert [s.windows for s in spans] == [None, 1]
    assert spans[0].result.threshold == pytest.approx(0.0005)
    assert [s.windows for s in srm_spans([[100, 100]], [0.5, 0.5], 0.001, (1, 7))] == [None]


def _looks(control: np.ndarray, treatment: np.ndarray) -> list[dict[tuple[str, str], Moments]]:
    return [
        {("control", ASSIGNMENTS): Moments(int(c)), ("treatment", ASSIGNMENTS): Moments(int(t))}
        for c, t in zip(control, treatment, strict=True)
    ]


def test_a_true_split_flags_at_most_at_the_designed_rate_per_look() -> None:
    rng = np.random.default_rng(20)
    sims, windows, per_day = 200, 60, 5000
    treatment = rng.binomial(per_day, 0.5, size=(sims, windows))
    flagged_looks = flagged_experiments = 0
    for t in treatment:
        counts = np.stack([per_day - t, t], axis=1)
        flags = [any(s.result.mismatch for s in srm_spans(counts[: i + 1], [0.5, 0.5])) for i in range(windows)]
        flagged_looks += sum(flags)
        flagged_experiments += any(flags)
    # Bonferroni: at each look P(any span flags) <= 0.001, so ~12 of 12,000 looks at most
    # (a 7-window span's false flag lasts a few looks: allow twice that for the runs).
    assert flagged_looks <= 2 * 0.001 * sims * windows
    assert flagged_experiments <= 0.001 * sims * windows


def test_a_late_52_48_break_is_flagged_within_a_few_windows_and_before_the_cumulative_test() -> None:
    rng = np.random.default_rng(7)
    windows, per_day, start = 60, 5000, 40
    delays, cumulative_delays = [], []
    for _ in range(40):
        share = np.where(np.arange(windows) < start, 0.5, 0.48)
        t = rng.binomial(per_day, share)
        c = per_day - t
        looks = _looks(c, t)
        first = next((i for i in range(start, windows) if srm_only(EXP, looks[: i + 1]).srm_mismatch), None)
        delays.append(windows if first is None else first - start + 1)
        # The old check: chi-square on the counts since the start, at srm_threshold.
        cum = next(
            (i for i in range(start, windows) if srm_test([c[: i + 1].sum(), t[: i + 1].sum()], [0.5, 0.5]).mismatch),
            None,
        )
        cumulative_delays.append(windows if cum is None else cum - start + 1)
    assert np.median(delays) <= 5 and np.mean(np.array(delays) <= 7) >= 0.9
    assert np.median(delays) < np.median(cumulative_delays)

    # What the run records: the cumulative series (no span, as before) and one per span,
    # and a note naming the span that is off.
    res = srm_only(EXP, looks[: start + 6], "daily")
    recs = {(r.metric, r.labels): r.value for r in experiment_records(res, "control")}
    assert res.status == "invalid" and res.srm_mismatch
    assert recs[("ab_srm_detected", (("experiment", "e"),))] == 1.0
    assert recs[("ab_srm_p_value", (("experiment", "e"), ("span", "1w")))] == pytest.approx(
        stats.chisquare([c[start - 1 : start + 6].sum(), t[start - 1 : start + 6].sum()]).pvalue, rel=1e-10
    )
    assert ("ab_srm_p_value", (("experiment", "e"), ("span", "1d"))) in recs
    assert ("ab_srm_p_value", (("experiment", "e"),)) in recs
    assert any("over the last 1w" in n for n in experiment_notes(res, _window(), 0))


def _window() -> Window:
    return window_containing(dt.datetime(2024, 6, 1, 12), "daily", "UTC")


def test_span_labels_name_the_windows() -> None:
    assert [span_label(n, "daily") for n in (1, 7, 3, 14)] == ["1d", "1w", "3d", "2w"]
    assert [span_label(n, "hourly") for n in (1, 7, 24)] == ["1h", "7h", "1d"]
    with pytest.raises(ValueError, match="srm_spans"):
        EXP.model_validate({**EXP.model_dump(), "srm_spans": [0]})

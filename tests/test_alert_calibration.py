"""A small run of bench/calibrate_alerts.py (`make calibrate-alerts` runs the full year):
the default rules of configs/monitoring.yaml, window by window over a simulated normal
history, meet issue #20's targets: no false page on the normal days, every injected
incident paged in its first window, at most 2 alerts per incident after folding and at
most one notification per incident per day. Plus the generator's own promises (the
shape of the normal year the calibration is judged on)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import calibrate_alerts  # noqa: E402
from alertsim.generators import GENERATORS, SAAS, START, Incident, generate_day, rollout_share, slow_state  # noqa: E402


def _col(table, shape, name):  # type: ignore[no-untyped-def]
    return table.column(shape.columns.get(name, name))


def test_generators_draw_the_normal_year_they_describe() -> None:
    assert set(GENERATORS) == {"saas", "enterprise", "consumer"}
    for shape in GENERATORS.values():
        slow = slow_state(shape, 0)
        days = {d: generate_day(shape, d, 2000, 0, slow)[0] for d in (7, 12, 13, 14, 350)}
        # Weekly seasonality (day 12 is a Saturday: quieter at work, busier for consumers)
        # and growth over the year.
        assert (START + dt.timedelta(days=12)).weekday() == 5
        sat = np.mean([generate_day(shape, d, 2000, 0, slow)[0].num_rows for d in (5, 12, 19, 26)])
        mon = np.mean([generate_day(shape, d, 2000, 0, slow)[0].num_rows for d in (7, 14, 21, 28)])
        assert abs(sat / mon - 1) > 0.15, shape.name
        assert days[350].num_rows > 1.1 * days[7].num_rows, shape.name
        # Same seed and day, same rows: an incident's history is the normal one.
        again = generate_day(shape, 13, 2000, 0, slow)[0]
        assert again.equals(days[13])
        # 1-3% errors; the experiment's split is 50/50.
        for t in days.values():
            err = pc.mean(pc.cast(pc.not_equal(_col(t, shape, "status"), "ok"), "double")).as_py()
            assert 0.006 < err < 0.045, (shape.name, err)
        arms = pc.value_counts(pc.drop_null(_col(days[350], shape, "variant"))).to_pylist()
        counts = [a["counts"] for a in arms]
        assert len(counts) == 2 and abs(counts[0] - counts[1]) < 4 * np.sqrt(sum(counts)), counts
        # The new model's rollout: none before it, its share of traffic after it.
        assert rollout_share(shape, shape.rollout_start) == 0
        assert rollout_share(shape, shape.rollout_start + shape.rollout_days) == pytest.approx(shape.rollout_to)
        models = _col(days[350], shape, "model")
        share = pc.mean(pc.cast(pc.equal(models, shape.rollout_model), "double")).as_py()
        assert abs(share - shape.rollout_to) < 0.07, (shape.name, share)
        assert shape.rollout_model not in set(_col(days[7], shape, "model").to_pylist())


def test_incidents_change_their_days_only() -> None:
    shape = SAAS
    slow = slow_state(shape, 0)
    inc = Incident("latency_spike", 13, 1)
    normal = generate_day(shape, 13, 2000, 0, slow)[0]
    spiked = generate_day(shape, 13, 2000, 0, slow, inc)[0]
    assert generate_day(shape, 14, 2000, 0, slow, inc)[0].equals(generate_day(shape, 14, 2000, 0, slow)[0])
    lat = "latency_seconds"
    target = pc.and_(
        pc.equal(normal.column("model"), shape.incident_model), pc.equal(normal.column("endpoint"), "chat")
    )
    ratio = pc.divide(spiked.column(lat), normal.column(lat)).to_numpy()
    assert set(np.round(ratio[~target.to_numpy(zero_copy_only=False)], 6)) == {1.0}
    assert np.isclose(ratio, 3.0).sum() > 20  # 6 hours of the target's rows, 3x slower


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~20 windows: about a minute on an idle machine, several on a loaded one
def test_default_rules_meet_the_targets_on_a_small_run(tmp_path: Path) -> None:
    out = tmp_path / "calibration.json"
    code = calibrate_alerts.main(
        [
            "--generator",
            "saas",
            "--days",
            "16",
            "--rows",
            "6000",  # the generator's own volume: the quality drop's model has ~230 labelled rows a day
            "--incidents",
            "latency_spike,quality_drop",
            "--start",
            "12",
            "--after",
            "0",
            "--workdir",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    (result,) = json.loads(out.read_text())["results"]
    normal = result["normal"]
    assert normal["windows"] == 16 and normal["degraded_windows"] == 0, normal["errors"]
    assert normal["pages_total"] == 0, normal["page_list"]
    assert [i["kind"] for i in result["incidents"]] == ["latency_spike", "quality_drop"]
    for inc in result["incidents"]:
        assert inc["degraded_windows"] == 0, inc
        assert inc["paged_first_window"], inc
        assert inc["alerts_after_folding"] <= 2, inc
        assert max(inc["notifications_per_day"]) <= 1, inc


def test_the_consumer_country_mix_drifts_slowly_not_in_a_step() -> None:
    """The third shape's slow drift: India's share of the rows grows from ~10% to ~25%
    over five months, by a fraction of a point a day."""
    from alertsim.generators import CONSUMER

    slow = slow_state(CONSUMER, 0)

    def india(day: int) -> float:
        t = generate_day(CONSUMER, day, 4000, 0, slow)[0]
        return float(pc.mean(pc.cast(pc.equal(t.column("country"), "in"), "double")).as_py())

    before, mid, after = india(90), india(175), india(260)
    assert 0.08 < before < 0.12 and 0.15 < mid < 0.20 and 0.22 < after < 0.28
    assert abs(india(176) - mid) < 0.02  # a day's step is noise-sized

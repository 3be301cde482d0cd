"""A fast run of bench/calibrate_drift.py (`make calibrate` runs the full one): the
defaults keep the dataset-level false-positive rate within 5% and catch the shifts
they are meant to catch."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "calibrate_drift.py"


@pytest.mark.slow
def test_defaults_are_calibrated() -> None:
    spec = importlib.util.spec_from_file_location("calibrate_drift", SCRIPT)
    assert spec is not None and spec.loader is not None
    cal = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = cal  # dataclasses look their module up while the script loads
    spec.loader.exec_module(cal)
    results = cal.run([1000, 10_000], {1000: 20, 10_000: 5}, seed=1)
    print(cal.table(results))
    for (scenario, n), t in results.items():
        # False positives: the dataset flag within the 5% bound at every n; single
        # unshifted features and the embedding verdict rarely.
        assert t.dataset / t.reps <= 0.05, (scenario, n)
        assert t.feature_fp / t.feature_tests <= 0.05, (scenario, n)
        if scenario == "no drift":
            assert t.emb / t.emb_reps <= 0.1, n
    power = {key: t.target / t.reps for key, t in results.items() if key[0] in cal.TARGET}
    assert power[("mean +0.25σ", 10_000)] >= 0.9
    assert power[("variance ×1.5", 10_000)] >= 0.9
    assert power[("new category 5%", 1000)] >= 0.9 and power[("new category 5%", 10_000)] >= 0.9
    for n in (1000, 10_000):
        t = results[("embedding rotation 15°", n)]
        assert t.emb / t.emb_reps >= 0.9, n

"""The drift analyzer on a real embedded warehouse (and SQLite): figures equal scipy on
the rows read independently; reference statistics are stored, reused without
re-reading, and recomputed when the config or the reference changes; the effect floor
keeps big windows honest."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats

from aimon.config import DriftConfig
from aimon.engines import get_engine
from aimon.errors import ConfigError, ContractError
from aimon.records import AnalyzerResult
from aimon.store.metrics import Store
from aimon.store.reference import ReferenceCache
from aimon.tasks.drift.analyzer import analyze_drift
from aimon.tasks.drift.calculate import compare, stats_from_arrays
from aimon.tasks.drift.features import FeatureSpec
from aimon.tasks.drift.fit import reference_windows
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests import reference
from tests.conftest import DAY, make_config

FEATURES = [{"name": "user_tier", "type": "categorical"}, {"name": "language", "type": "categorical"}]


@pytest.fixture
def demo_url(tmp_path: Path) -> str:
    """Four demo days ending on DAY (the language mix and the embeddings shift on DAY)."""
    from aimon.demo import seed_duckdb

    seed_duckdb(tmp_path / "demo.duckdb", days=4, rows_per_day=3000, seed=5, end=DAY, feedback_table=None)
    return f"duckdb:///{tmp_path / 'demo.duckdb'}"


def drift_config(url: str, **drift: object):
    return make_config(url, reference={"previous_windows": 3}, drift={"features": FEATURES, **drift})


def run(cfg, day: dt.date = DAY) -> AnalyzerResult:
    return analyze_drift(open_window(cfg, daily_window(day), Store(cfg)))


def fig(result: AnalyzerResult, metric: str, **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    hits = [r.value for r in result.records if r.metric == metric and r.labels == want]
    assert len(hits) == 1, (metric, labels, [r for r in result.records if r.metric == metric])
    return hits[0]


def rows_of(url: str, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    # Through the process's engine: DuckDB allows one database instance per file.
    with get_engine(url).connect() as conn:
        raw = conn.connection.driver_connection
        df = raw.sql("SELECT * EXCLUDE (embedding) FROM interactions").to_arrow_table().to_pandas()
    return reference.accepted(reference.in_window(df, start, end))


def test_figures_equal_scipy_on_independently_read_rows(demo_url: str) -> None:
    cfg = drift_config(demo_url)
    res = run(cfg)
    w = daily_window(DAY)
    refs = reference_windows(cfg, w)
    assert [r.start.date() for r in refs] == [DAY - dt.timedelta(days=d) for d in (3, 2, 1)]
    ref = rows_of(demo_url, refs[0].start, refs[-1].end)
    cur = rows_of(demo_url, w.start, w.end)
    for col in ("latency_seconds", "input_tokens", "output_tokens"):
        a, b = ref[col].dropna().to_numpy(float), cur[col].dropna().to_numpy(float)
        # 9000 reference rows > 1000: Wasserstein is the score, KS the test behind it.
        want_w = stats.wasserstein_distance(a, b) / np.std(a)
        assert fig(res, "data_drift_score", feature=col, method="wasserstein") == pytest.approx(want_w, rel=1e-9)
        assert fig(res, "data_drift_p_value", feature=col, method="ks") == pytest.approx(
            stats.ks_2samp(a, b).pvalue, rel=1e-6, abs=1e-12
        )
    # Categories: Jensen-Shannon distance on the shares, chi-square behind it.
    a, b = ref["language"].value_counts(), cur["language"].value_counts()
    keys = sorted(set(a.index) | set(b.index))
    p, q = (a.reindex(keys, fill_value=0) / a.sum()).to_numpy(), (b.reindex(keys, fill_value=0) / b.sum()).to_numpy()
    from scipy.spatial import distance

    assert fig(res, "data_drift_score", feature="language", method="jensenshannon") == pytest.approx(
        distance.jensenshannon(p, q), rel=1e-9
    )
    # The demo's incidents: the language mix shifts, the tiers do not; embeddings move.
    assert fig(res, "data_drift_detected", feature="language") == 1.0
    assert fig(res, "data_drift_detected", feature="user_tier") == 0.0
    assert fig(res, "embedding_drift_detected") == 1.0
    assert fig(res, "embedding_drift_score", method="domain_classifier") > 0.55
    share = fig(res, "data_drift_share")
    n_features = len({r.label("feature") for r in res.records if r.metric == "data_drift_detected"})
    assert n_features == 8  # 3 numerical and 3 categorical built-ins + user_tier + language
    assert share == pytest.approx(sum(r.value for r in res.records if r.metric == "data_drift_detected") / 8)
    assert fig(res, "data_drift_dataset_detected") == float(share >= 0.5)
    summary = next(n for n in res.notes if n.startswith("drift: "))
    lang = next(f for f in res.details["report"].features if f.feature == "language")
    assert lang.n_reference == len(ref) and lang.n_current == len(cur)
    assert f"language (jensenshannon {lang.statistic:.4g}" in summary
    assert f"{len(ref):,} reference vs {len(cur):,} current rows" in summary


def test_reference_statistics_are_reused_then_invalidated(demo_url: str, tmp_path: Path) -> None:
    cfg = drift_config(demo_url)
    first = run(cfg)
    assert first.details["reference_windows_read"] == 3
    second = run(cfg)
    assert (second.details["reference_windows_read"], second.details["reference_windows_cached"]) == (0, 3)
    assert sorted(second.records, key=repr) == sorted(first.records, key=repr)
    # The day before reuses what the first run stored (two of its three reference days).
    earlier = run(cfg, DAY - dt.timedelta(days=1))
    assert earlier.details["reference_windows_read"] == 1  # only DAY-4 was never seen

    # A config change that shapes the statistics: everything is recomputed.
    more = drift_config(demo_url, features=[*FEATURES, {"name": "variant", "type": "categorical"}])
    assert run(more).details["reference_windows_read"] == 3
    # The original config's entries are still valid.
    assert run(cfg).details["reference_windows_read"] == 0

    # A late row lands in a reference day: that day, and only that day, is re-read.
    late = dt.datetime.combine(DAY - dt.timedelta(days=2), dt.time(3))
    with get_engine(demo_url).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO interactions (timestamp, model, status, latency_seconds) VALUES (:ts, 'gpt-4o', 'ok', 9.5)"
            ),
            {"ts": late},
        )
    after = run(cfg)
    assert after.details["reference_windows_read"] == 1
    assert after.details["reference_rows"] == first.details["reference_rows"] + 1
    assert ReferenceCache(cfg.store_url).count() >= 5


def test_baseline_reference(demo_url: str) -> None:
    cfg = make_config(
        demo_url,
        reference={"previous_windows": None, "baseline": {"start": str(DAY - dt.timedelta(days=3)), "end": str(DAY)}},
        drift={"features": FEATURES},
    )
    res = run(cfg)
    assert res.details["reference_windows"] == 1 and res.details["reference_rows"] > 8900
    assert fig(res, "data_drift_detected", feature="language") == 1.0
    assert run(cfg).details["reference_windows_read"] == 0


def test_bad_features_are_clear_errors(demo_url: str) -> None:
    cfg = drift_config(demo_url, features=[{"name": "no_such_column", "type": "numerical"}])
    with pytest.raises(ContractError, match=r"drift.features\[0\]: column 'no_such_column' not in table"):
        run(cfg)
    cfg = drift_config(demo_url, features=[{"name": "language", "type": "numerical"}])
    with pytest.raises(ContractError, match=r"'language'.*not a number: declare it type: categorical"):
        run(cfg)
    with pytest.raises(
        ConfigError, match=r"unknown drift method 'kolmogorov'; valid: anderson, chisquare, cramer_von_mises"
    ):
        drift_config(demo_url, features=[{"name": "language", "type": "categorical", "method": "kolmogorov"}])
    with pytest.raises(ConfigError, match=r"unknown key 'drift\.features\.0\.methd'"):
        drift_config(demo_url, features=[{"name": "language", "type": "categorical", "methd": "psi"}])


def test_configured_method_and_threshold(demo_url: str) -> None:
    cfg = drift_config(
        demo_url,
        features=[
            {"name": "language", "type": "categorical", "method": "psi", "threshold": 0.05},
            {"name": "user_tier", "type": "categorical", "method": "chisquare", "threshold": 0.01},
        ],
        builtins=False,
        embeddings=None,
    )
    res = run(cfg)
    assert {r.label("method") for r in res.records if r.metric == "data_drift_score"} == {
        "psi",
        "chisquare",
        "jensenshannon",
    }
    report = res.details["report"]
    lang = next(f for f in report.features if f.feature == "language")
    assert (lang.method, lang.threshold, lang.test_method) == ("psi", 0.05, "chisquare")
    assert not any(r.metric.startswith("embedding") for r in res.records)


def test_sqlite_warehouse(sqlite_url: str) -> None:
    """The generic (non-DuckDB) read path; the test frame has no embedding column."""
    cfg = make_config(sqlite_url, reference={"previous_windows": 2}, drift={"features": FEATURES})
    res = run(cfg)
    assert fig(res, "data_drift_detected", feature="language") == 1.0
    assert any("embedding drift: skipped" in n for n in res.notes)
    assert run(cfg).details["reference_windows_read"] == 0


def test_big_windows_shift_vs_negligible_vs_identical() -> None:
    """At 100k rows a side, plain KS flags a practically negligible shift (0.03 sd);
    the effect floor does not, while a real shift (0.5 sd) is flagged and an identical
    distribution is not."""
    rng = np.random.default_rng(42)
    n = 100_000
    ref = {"shifted": rng.normal(0, 1, n), "negligible": rng.normal(0, 1, n), "identical": rng.normal(0, 1, n)}
    cur = {
        "shifted": rng.normal(0.5, 1, n),
        "negligible": rng.normal(0.03, 1, n),
        "identical": rng.normal(0, 1, n),
    }
    plain_ks = {k: stats.ks_2samp(ref[k], cur[k]).pvalue < 0.05 for k in ref}
    assert plain_ks == {"shifted": True, "negligible": True, "identical": False}
    specs = [FeatureSpec(k, "numerical") for k in ref]
    report = compare(stats_from_arrays(ref, sketch_size=20_000), stats_from_arrays(cur), specs, DriftConfig())
    got = {f.feature: f.detected for f in report.features}
    assert got == {"shifted": True, "negligible": False, "identical": False}
    neg = next(f for f in report.features if f.feature == "negligible")
    assert neg.p_value_adjusted < 0.05 and neg.effect < neg.effect_floor  # significant, but tiny
    # KS as the method and no floor: the plain KS verdict again.
    no_floor = DriftConfig(effect_floors={"numerical": 0.0, "categorical": 0.0})
    ks_specs = [FeatureSpec(k, "numerical", method="ks") for k in ref]
    report = compare(stats_from_arrays(ref), stats_from_arrays(cur), ks_specs, no_floor)
    assert {f.feature: f.detected for f in report.features}["negligible"] is True


def test_small_reference_uses_p_value_tests() -> None:
    rng = np.random.default_rng(1)
    ref = stats_from_arrays(
        {"x": rng.normal(0, 1, 800), "d": rng.integers(0, 3, 800)}, {"c": rng.choice(["a", "b"], 800)}
    )
    cur = stats_from_arrays(
        {"x": rng.normal(0, 1, 800), "d": rng.integers(0, 3, 800)}, {"c": rng.choice(["a", "b"], 800)}
    )
    specs = [FeatureSpec("x", "numerical"), FeatureSpec("d", "numerical"), FeatureSpec("c", "categorical")]
    methods = {f.feature: f.method for f in compare(ref, cur, specs, DriftConfig()).features}
    # Evidently's rules: KS for numbers, chi-square for <= 5 values (3 here), z for two categories.
    assert methods == {"x": "ks", "d": "chisquare", "c": "z"}


@pytest.mark.slow
def test_html_report_is_saved(demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMON_HOME", str(tmp_path / "home"))
    cfg = drift_config(demo_url, html_report=True, embeddings=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's import chain (litestar) warns about itself
        res = run(cfg)
    path = Path(res.details["html_report"])
    assert path.is_file() and path.parent == tmp_path / "home" / "reports"
    assert path.stat().st_size > 100_000 and "language" in path.read_text(errors="ignore")


def test_a_feature_without_values_is_skipped_with_a_note() -> None:
    rng = np.random.default_rng(3)
    ref = stats_from_arrays({"x": rng.normal(0, 1, 2000)}, {"error_type": ["timeout"] * 30})
    cur = stats_from_arrays({"x": rng.normal(0, 1, 2000)}, {"error_type": []})
    specs = [FeatureSpec("x", "numerical"), FeatureSpec("error_type", "categorical")]
    report = compare(ref, cur, specs, DriftConfig())
    assert [f.feature for f in report.features] == ["x"]
    assert report.notes == ("drift: error_type skipped, no values in the current window",)


def test_every_feature_score_equals_evidentlys_data_drift_preset(demo_url: str) -> None:
    """The analyzer's per-feature score (method chosen by Evidently's rules) equals the
    score Evidently's own DataDriftPreset reports on the same rows (drift_frame), for
    the built-in features and the configured ones alike."""
    from aimon.tasks.drift.features import feature_specs
    from aimon.tasks.drift.report import drift_frame

    cfg = drift_config(demo_url)
    ctx = open_window(cfg, daily_window(DAY), Store(cfg))
    res = analyze_drift(ctx)
    specs, _ = feature_specs(cfg, ctx.interactions)
    ref = drift_frame(ctx, ctx.interactions, specs, reference_windows(cfg, ctx.window))
    cur = drift_frame(ctx, ctx.interactions, specs, [ctx.window])
    assert len(ref) == res.details["reference_rows"] > 8900 and 2900 < len(cur) <= 3000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's import chain (litestar) warns about itself
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(
            numerical_columns=[s.name for s in specs if s.kind == "numerical"],
            categorical_columns=[s.name for s in specs if s.kind == "categorical"],
        )
        snap = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
        )
    theirs = {
        m["config"]["column"]: (m["config"]["method"], float(m["value"]))
        for m in snap.dict()["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    # A distance method's score is the distance; a test's (small reference) its p-value.
    ours = {
        f.feature: (f.method, f.p_value if f.method == f.test_method else f.statistic)
        for f in res.details["report"].features
    }
    assert set(ours) == set(theirs) == {s.name for s in specs} and len(ours) == 8
    names = {
        "wasserstein": "Wasserstein distance (normed)",
        "jensenshannon": "Jensen-Shannon distance",
        "chisquare": "chi-square p_value",
    }
    assert ours["error_type"][0] == "chisquare"  # few errors: under drift.small_sample reference rows
    for feature, (method, score) in ours.items():
        assert names[method] == theirs[feature][0], feature
        assert score == pytest.approx(theirs[feature][1], rel=1e-9, abs=1e-12), feature


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_a_big_window_reads_a_hashed_presample_of_embeddings(
    demo_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """Above 4 x embeddings.cap rows only a hash pre-sample of the embedding column leaves
    the warehouse (the whole column of a 10M-row day would not fit the memory budget):
    the same rows every run, `cap` of them kept, and the demo's embedding shift on DAY
    still detected, on normal days not."""
    from tests.conftest import PG_URL

    url = demo_url
    if backend == "postgresql":
        schema = request.getfixturevalue("pg_schema")
        import pyarrow as pa

        with get_engine(demo_url).connect() as conn:
            table = conn.connection.driver_connection.sql("SELECT * FROM interactions").to_arrow_table()
        import adbc_driver_postgresql.dbapi as pgdb

        plain = pa.table(
            [
                c.cast(f.type.value_type) if pa.types.is_dictionary(f.type) else c
                for f, c in zip(table.schema, table.columns, strict=True)
            ],
            names=table.schema.names,
        )
        with pgdb.connect(PG_URL.replace("postgresql+psycopg", "postgresql")) as con, con.cursor() as cur:
            cur.execute(f'SET search_path TO "{schema}"')
            cur.adbc_ingest("interactions", plain, mode="create", db_schema_name=schema)
            con.commit()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    emb = {"column": "embedding", "cap": 600, "mmd_cap": 100, "permutations": 50}  # 3000 rows/day > 4 x 600
    cfg = drift_config(url, embeddings=emb)
    first, again = run(cfg), run(cfg)
    for metric in ("embedding_drift_score", "embedding_drift_detected"):
        a = {r.labels: r.value for r in first.records if r.metric == metric}
        assert a and a == {r.labels: r.value for r in again.records if r.metric == metric}
    assert fig(first, "embedding_drift_detected") == 1.0
    centroid = first.details["report"].embeddings[0]
    assert (centroid.method, centroid.n_reference, centroid.n_current) == ("centroid", 600, 600)
    quiet = run(cfg, DAY - dt.timedelta(days=1))
    assert fig(quiet, "embedding_drift_detected") == 0.0

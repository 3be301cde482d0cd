"""A simulated year of daily windows through the drift verdict, window by window, with
the analyzer's own history: how often does each feature drift on a normal day, and is
every injected incident caught on its first day?

Each day's statistics are those the analyzer stores (the reference side sketched);
the reference is the previous `reference.previous_windows` (7) days, pooled by
aimon.tasks.drift.fit.pooled_reference with the windows where a feature drifted left
out; the history is the figures drift_records would have stored (data_drift_score,
data_drift_detected, embedding_drift_*), so the learned bounds are learned exactly as
in a deployment. Two generators of different shape (`A`: the issue's: weekly
seasonality, +50% growth, slow random walks in latency and token lengths, a gradual
model rollout, 1-2% errors with an occasional 30-minute rate-limit blip, wobbling
feature mixes; `B`: 5x the traffic, gamma latencies, a heavier error mix, stronger
weekly swings, its own walks), each with incidents: a one-day cost spike (tokens x3),
a three-day language shift, a one-day latency spike (x2), a one-day embedding shift.

    nice -n 10 .venv/bin/python bench/calibrate_drift.py --year          # both shapes, both modes
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from aimon.config.analyses import DriftConfig
from aimon.stats import stattests as st
from aimon.store.reference import WindowStats
from aimon.tasks.drift.calculate import DriftReport, compare_thinned, judge_embeddings, stats_from_arrays
from aimon.tasks.drift.features import FeatureSpec
from aimon.tasks.drift.fit import ReferenceLoad, merge_stats, pooled_reference, reference_embeddings
from aimon.tasks.drift.history import AUC_Z, EMBEDDING, SCALED, History
from aimon.tasks.drift.records import drift_records

SPECS = [
    FeatureSpec("latency_seconds", "numerical", builtin=True),
    FeatureSpec("input_tokens", "numerical", builtin=True),
    FeatureSpec("output_tokens", "numerical", builtin=True),
    FeatureSpec("model", "categorical", builtin=True),
    FeatureSpec("endpoint", "categorical", builtin=True),
    FeatureSpec("error_type", "categorical", builtin=True),
    FeatureSpec("user_tier", "categorical"),
    FeatureSpec("language", "categorical"),
]
DAYS = 365
START = dt.datetime(2026, 1, 1)
# Incidents: day -> (kind, days it lasts). Their days are not counted as normal days.
INCIDENTS = {150: ("cost spike", 1), 220: ("language shift", 3), 260: ("latency spike", 1), 300: ("embedding shift", 1)}
TARGET = {"cost spike": "input_tokens", "language shift": "language", "latency spike": "latency_seconds"}
ERRORS = np.array(["rate_limit_exceeded", "timeout", "server_error", "invalid_request", "content_filter"])
LANGS = np.array(["en", "de", "fr", "es", "ja"])
EMB_DIM = 8


@dataclass(frozen=True)
class Shape:
    name: str
    rows: int  # mean requests a day at the start (grows 50% over the year)
    weekend: float  # weekend traffic factor
    error_rate: float
    error_p: tuple[float, ...]
    latency: str  # "lognormal" | "gamma"
    walk: float  # daily step of the latency / token random walks (log scale)
    mix_noise: float  # Dirichlet concentration of the day-to-day mix wobble (lower: more)
    blips: int  # 30-minute rate-limit bursts a year


SHAPES = {
    "A": Shape("A", 4000, 0.6, 0.015, (0.3, 0.3, 0.2, 0.15, 0.05), "lognormal", 0.012, 3000.0, 12),
    "B": Shape("B", 20_000, 0.4, 0.03, (0.15, 0.45, 0.25, 0.1, 0.05), "gamma", 0.03, 1500.0, 20),
}


def _mix(rng: np.random.Generator, p: np.ndarray, conc: float) -> np.ndarray:
    return rng.dirichlet(p * conc)


def simulate(shape: Shape, seed: int, embeddings: bool = True):  # type: ignore[no-untyped-def]
    """Yield (day, incident kind or None, numeric, categorical, embeddings) for a year."""
    rng = np.random.default_rng([seed, ord(shape.name)])
    lat_walk = tok_walk = out_walk = 0.0
    blip_days = set(rng.choice(np.arange(10, DAYS), shape.blips, replace=False).tolist())
    active: dict[int, str] = {d + i: k for d, (k, n) in INCIDENTS.items() for i in range(n)}
    emb_mean = np.array([1.0, 0.5, 0.3, 0, 0, 0, 0, 0])
    emb_scale = np.array([1.0, 0.8, 0.6, 0.5, 0.5, 0.4, 0.3, 0.3])
    for d in range(DAYS):
        kind = active.get(d)
        weekend = (START + dt.timedelta(days=d)).weekday() >= 5
        n = int(rng.poisson(shape.rows * (1 + 0.5 * d / DAYS) * (shape.weekend if weekend else 1.0)))
        lat_walk += rng.normal(0, shape.walk)
        tok_walk += rng.normal(0, shape.walk / 2)
        out_walk += rng.normal(0, shape.walk / 2)
        day_noise = rng.normal(0, shape.walk)
        lat_mu = np.log(0.8) + lat_walk + day_noise + (-0.05 if weekend else 0.0)
        if shape.latency == "lognormal":
            latency = rng.lognormal(lat_mu, 0.5, n)
        else:
            latency = rng.gamma(2.0, np.exp(lat_mu) / 2.0, n)
        if kind == "latency spike":
            latency = latency * 2.0
        inp = np.maximum(1, rng.lognormal(6.5 + tok_walk, 0.6, n)).astype(np.int64)
        out = np.maximum(1, rng.lognormal(5.0 + out_walk, 0.7, n)).astype(np.int64)
        if kind == "cost spike":
            inp, out = inp * 3, out * 3
        # A gradual rollout: the new model goes from 0 to 40% of the traffic over 60 days.
        new_share = float(np.clip((d - 120) / 60, 0, 1)) * 0.4
        model = np.where(rng.random(n) < new_share, "new-model", np.where(rng.random(n) < 0.7, "gpt-4o", "mini"))
        ep_p = np.array([0.5, 0.3, 0.2]) if not weekend else np.array([0.4, 0.4, 0.2])
        endpoint = np.array(["chat", "search", "summarise"])[rng.choice(3, n, p=_mix(rng, ep_p, shape.mix_noise))]
        failed = rng.random(n) < shape.error_rate * rng.uniform(0.67, 1.33)
        err = ERRORS[rng.choice(len(ERRORS), n, p=_mix(rng, np.array(shape.error_p), shape.mix_noise / 10))]
        if d in blip_days:  # 30 minutes of rate limits: 40% of that half hour's requests
            burst = rng.random(n) < 0.4 / 48
            failed |= burst
            err = np.where(burst, "rate_limit_exceeded", err)
        errors = err[failed]
        tier = np.array(["free", "pro", "enterprise"])[
            rng.choice(3, n, p=_mix(rng, np.array([0.6, 0.3, 0.1]), shape.mix_noise))
        ]
        lang_p = np.array([0.55, 0.15, 0.12, 0.13, 0.05])
        if kind == "language shift":
            lang_p = np.array([0.35, 0.15, 0.12, 0.13, 0.25])
        lang = LANGS[rng.choice(5, n, p=_mix(rng, lang_p, shape.mix_noise))]
        emb = None
        if embeddings:
            m = min(n, 5000)
            topic = rng.normal(0, 0.015, EMB_DIM)  # the day's topic mix wobbles the mean a little
            emb = emb_mean + topic + emb_scale * rng.standard_normal((m, EMB_DIM))
            if kind == "embedding shift":
                a = np.deg2rad(15)
                rot = np.eye(EMB_DIM)
                rot[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
                emb = emb @ rot.T
            emb = emb.astype(np.float32)
        num = {"latency_seconds": latency, "input_tokens": inp, "output_tokens": out}
        cat = {"model": model, "endpoint": endpoint, "error_type": errors, "user_tier": tier, "language": lang}
        yield d, kind, num, cat, emb, n


@dataclass
class YearResult:
    normal_days: int = 0
    false_by_feature: dict[str, int] = field(default_factory=dict)  # on normal days
    false_embedding: int = 0
    caught: dict[str, bool] = field(default_factory=dict)  # incident -> flagged on its first day
    not_judged: dict[str, int] = field(default_factory=dict)  # feature -> days not judged
    after_spike: int = 0  # drifted features on the 3 normal days after the cost spike
    false_days: list[tuple[int, str]] = field(default_factory=list)  # (day, feature) of each false drift


def old_config() -> DriftConfig:
    """The verdict before learned bounds: fixed floors, no minimum sample, nothing left
    out of the reference (the numbers of issue #20)."""
    return DriftConfig(
        thresholds={"mode": "fixed"},
        min_sample={"rows": 1, "features": {}},
        reference_excludes_drifted=False,
        embeddings={"min_sample": 10, "learned": False, **YEAR_EMBEDDINGS},
    )


# The verdict is the domain classifier's (detect_with); MMD's 200 permutations would
# make a simulated year take minutes per run and decide nothing.
YEAR_EMBEDDINGS = {"methods": ("domain_classifier",)}


def new_config() -> DriftConfig:
    """The defaults (learned bounds, minimum samples, drifted windows left out)."""
    return DriftConfig(embeddings=YEAR_EMBEDDINGS)


def run_year(shape: Shape, cfg: DriftConfig, seed: int = 0, embeddings: bool = True) -> YearResult:
    ref_n = 7
    stored: list[tuple[dt.datetime, WindowStats]] = []
    scores: dict[tuple[str, str], dict[dt.datetime, float]] = {}
    drifted: dict[str, set[dt.datetime]] = {}
    res = YearResult()
    learned = cfg.thresholds.mode == "learned"
    spike = next(d for d, (k, _) in INCIDENTS.items() if k == "cost spike")
    active = {d + i for d, (_, n) in INCIDENTS.items() for i in range(n)}
    for d, kind, num, cat, emb, _n in simulate(shape, seed, embeddings):
        start = START + dt.timedelta(days=d)
        cur = stats_from_arrays(num, cat, emb)
        keep = WindowStats(
            cur.rows,
            {k: st.sketch(v, cfg.sketch_size) for k, v in cur.numeric.items()},
            cur.categorical,
            emb,
            0 if emb is None else len(emb),
        )
        parts = stored[-ref_n:]
        stored.append((start, keep))
        if not parts:
            continue
        lo = start - dt.timedelta(days=cfg.thresholds.windows)
        history = History(
            {k: {s: v for s, v in byday.items() if s >= lo} for k, byday in scores.items()},
            {k: set(v) for k, v in drifted.items()},
        )
        emb_parts = tuple((p.embedding_rows, p.embeddings) for _, p in parts if p.embeddings is not None)
        load = ReferenceLoad(merge_stats([p for _, p in parts]), emb_parts, len(parts), 0, 0, tuple(parts))
        full, thinned = load.stats, set[str]()
        if cfg.reference_excludes_drifted:
            load, _, thinned = pooled_reference(load, SPECS, history.drifted, EMBEDDING)
        report = compare_thinned(full, load.stats, thinned, cur, SPECS, cfg, history if learned else None)
        emb_drift = False
        if emb is not None and cfg.embeddings is not None and load.embedding_parts:
            e = cfg.embeddings
            ref_emb, _ = reference_embeddings(load.embedding_parts, EMB_DIM, e.cap, e.seed)
            results, emb_drift, bound, judged, _ = judge_embeddings(ref_emb, emb, cfg, history if learned else None)
            report = DriftReport(
                report.features, report.share, report.dataset_drift, report.dataset_share, results, emb_drift,
                report.notes, bound, judged,
            )  # fmt: skip
        for r in drift_records(report):
            labels = dict(r.labels)
            if r.metric == "data_drift_score":
                scores.setdefault((labels["feature"], labels["method"]), {})[start] = r.value
            elif r.metric == "data_drift_scaled_score":
                scores.setdefault((labels["feature"], SCALED + labels["method"]), {})[start] = r.value
            elif r.metric == "data_drift_detected" and r.value >= 1:
                drifted.setdefault(labels["feature"], set()).add(start)
            elif r.metric == "embedding_drift_auc_z":
                scores.setdefault((EMBEDDING, AUC_Z), {})[start] = r.value
            elif r.metric == "embedding_drift_detected" and r.value >= 1:
                drifted.setdefault(EMBEDDING, set()).add(start)
        flagged = {f.feature for f in report.drifted}
        for f in report.not_judged:
            res.not_judged[f.feature] = res.not_judged.get(f.feature, 0) + 1
        if kind is not None:
            if d in INCIDENTS:
                res.caught[kind] = (emb_drift if kind == "embedding shift" else TARGET[kind] in flagged) or False
            continue
        if d in active:
            continue
        res.normal_days += 1
        for f in flagged:
            res.false_by_feature[f] = res.false_by_feature.get(f, 0) + 1
            res.false_days.append((d, f))
        res.false_embedding += bool(emb_drift)
        if emb_drift:
            res.false_days.append((d, "embeddings"))
        if spike < d <= spike + 3:
            res.after_spike += len(flagged)
    return res


def year_table(results: dict[tuple[str, str], YearResult]) -> str:
    names = [s.name for s in SPECS]
    lines = [
        "| shape | verdict | normal days | false drifts a year (" + ", ".join(names) + ", embeddings) "
        "| after the cost spike (3 days) | incidents caught on day 1 |",
        "|---|---|---|---|---|---|",
    ]
    for (shape, mode), r in results.items():
        per = ", ".join(str(r.false_by_feature.get(n, 0)) for n in names) + f", {r.false_embedding}"
        total = sum(r.false_by_feature.values()) + r.false_embedding
        caught = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r.caught.items())
        lines.append(f"| {shape} | {mode} | {r.normal_days} | **{total}** ({per}) | {r.after_spike} | {caught} |")
    return "\n".join(lines)

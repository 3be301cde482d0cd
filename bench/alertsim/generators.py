"""Normal years of LLM traffic, in two shapes, and the incidents injected into them.

A generator draws one day at a time, vectorised (numpy -> Arrow), from a random
stream seeded by (seed, generator, day): a day's rows do not depend on which days were
drawn before, so an incident's history is the normal history up to its first day,
exactly. Slow state (random walks of latency and token lengths, the rollout of a new
model, rate-limit blips) is drawn once per generator and seed.

- "saas": the shape of issue #20: weekly seasonality, +50% growth over the year, day
  noise, slow random walks in latency and token lengths, a new priced model rolled out
  to ~40% of traffic over three weeks, 1-2% errors with an occasional 30-minute
  rate-limit blip, a true 50/50 prompt experiment, drift features (user_tier, language)
  with natural wobble, intent labels on a share of rows, feedback, and embeddings of a share of the RAG
  queries.
  Contract column names.
- "enterprise": other models and endpoints, business-hours traffic with deep weekend
  and holiday dips and a step change in volume (a customer onboarded), heavy-tailed
  latency (capped, in every shape, by a 600 s client timeout), timeouts and upstream
  disconnects rather than rate limits, fewer labels, no logged cost (priced from the
  pricing table), its own drift features, and its own column names, mapped through
  warehouse.columns in the generated config.
- "consumer": a B2C chat app, a third shape to check that the defaults are not tuned
  to the first two: weekend and evening peaks, fast early growth that slows, payday
  bumps, noisier days, a fast rollout of a new model to half its traffic, content
  filters and rate limits as most errors, a slow drift of the country mix (a new market
  grows over five months), moderation labels, sparse 32-dimensional embeddings, and
  other column names again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from aimon.demo import _dict, _masked, _prefixed

START = dt.date(2025, 1, 6)  # a Monday
HORIZON = 800  # days of slow state drawn per generator (a year plus incidents' tails)
TIMEOUT_SECONDS = 600.0  # the clients' timeout (the OpenAI and Anthropic SDKs' default)

# One incident of each kind; each goes into its own copy of the normal history.
INCIDENT_KINDS = (
    "latency_spike",
    "error_burst",
    "cost_spike",
    "feature_drift",
    "embedding_drift",
    "quality_drop",
    "srm",
    "srm_late",
    "unpriced_model",
)
# How many days each lasts (then normal again, to see it resolve).
INCIDENT_DAYS = {
    "latency_spike": 1,
    "error_burst": 1,
    "cost_spike": 2,
    "feature_drift": 2,
    "embedding_drift": 2,
    "quality_drop": 3,
    "srm": 3,
    "srm_late": 14,  # it does not heal: two weeks, to see the day the evidence suffices
    "unpriced_model": 2,
}


@dataclass(frozen=True)
class Incident:
    kind: str
    start: int  # day index of its first day
    days: int

    def active(self, day: int) -> bool:
        return self.start <= day < self.start + self.days


@dataclass(frozen=True)
class Shape:
    """What differs between generators."""

    name: str
    ident: int  # part of the random streams' seed
    models: tuple[str, ...]
    model_p: tuple[float, ...]
    latency_median: tuple[float, ...]  # seconds at 250 output tokens, per model
    accuracy: tuple[float, ...]  # classifier accuracy per model
    prices: dict[str, tuple[float, float]]  # USD per 1M tokens (input, output), every model
    rollout_model: str
    rollout_from: tuple[str, ...]  # the models whose traffic it takes over
    rollout_start: int
    rollout_days: int
    endpoints: tuple[str, ...]
    endpoint_p: tuple[float, ...]
    input_median: tuple[float, ...]  # per endpoint
    output_median: float
    error_rate: float
    error_mix: dict[str, float]  # status -> share of the errors
    blip_every: float  # mean days between 30-minute rate-limit blips
    features: dict[str, tuple[tuple[str, ...], tuple[float, ...]]]  # drift feature -> (values, p)
    drift_feature: str
    drift_p: tuple[float, ...]  # the feature_drift incident's distribution
    experiment: str
    variants: tuple[str, str]
    experiment_endpoint: int
    label_endpoint: int
    label_share: float
    intents: tuple[str, ...]
    embedding_endpoint: int  # the endpoint whose queries are embedded ...
    embedding_share: float  # ... and the share of them logged with their embedding
    embedding_dim: int
    feedback_share: float
    columns: dict[str, str] = field(default_factory=dict)  # contract name -> our column
    feedback_table: str = "feedback"
    log_cost: bool = True
    # The incidents' targets.
    incident_model: str = ""
    incident_endpoint: int = 0
    unpriced_model: str = "mistral-large"
    rollout_to: float = 0.4  # the new model's share of traffic once rolled out
    volume_sd: float = 0.08  # day-to-day noise of the volume (log scale)
    # A slow drift of one feature's mix: (feature, its mix at the end, first day, days).
    feature_trend: tuple[str, tuple[float, ...], int, int] | None = None

    # -- volume -----------------------------------------------------------------------

    def volume(self, day: int, rows: int, slow: Slow) -> int:
        raise NotImplementedError

    def hour_weights(self) -> np.ndarray:
        raise NotImplementedError

    def latency(self, rng: np.random.Generator, median: np.ndarray, hour: np.ndarray, n: int) -> np.ndarray:
        raise NotImplementedError


class SaasShape(Shape):
    def volume(self, day: int, rows: int, slow: Slow) -> int:
        weekday = (START + dt.timedelta(days=day)).weekday()
        weekly = 0.7 if weekday >= 5 else 1.0 + 0.05 * (weekday == 1)
        growth = 1.0 + 0.5 * min(day, 364) / 364
        return max(50, int(rows * weekly * growth * slow.volume_noise[day]))

    def hour_weights(self) -> np.ndarray:
        return 1.0 + 0.8 * np.sin((np.arange(24) - 8) / 24 * 2 * np.pi)

    def latency(self, rng: np.random.Generator, median: np.ndarray, hour: np.ndarray, n: int) -> np.ndarray:
        lat = median * np.exp(0.45 * rng.standard_normal(n))
        tail = rng.random(n) < 0.01
        lat[tail] += rng.pareto(2.5, int(tail.sum())) * 5
        return lat


# Days of the enterprise year at a fraction of normal volume: new year, Easter, summer
# and the week between Christmas and New Year (day indices from START).
_HOLIDAYS = {0: 0.5, 95: 0.3, 98: 0.3, 140: 0.4, 230: 0.5, 231: 0.5, 352: 0.3, 353: 0.2, 354: 0.2, 355: 0.3, 358: 0.2}


class EnterpriseShape(Shape):
    def volume(self, day: int, rows: int, slow: Slow) -> int:
        weekday = (START + dt.timedelta(days=day)).weekday()
        weekly = (0.2, 0.25)[weekday - 5] if weekday >= 5 else (1.1 if weekday in (1, 2) else 1.0)
        holiday = _HOLIDAYS.get(day % 365, 1.0)
        step = 1.35 if day >= 150 else 1.0  # a large customer onboarded
        growth = 1.0 + 0.2 * min(day, 364) / 364
        return max(50, int(rows * weekly * holiday * step * growth * slow.volume_noise[day]))

    def hour_weights(self) -> np.ndarray:
        h = np.arange(24)
        return 0.15 + np.exp(-0.5 * ((h - 13.0) / 3.0) ** 2)

    def latency(self, rng: np.random.Generator, median: np.ndarray, hour: np.ndarray, n: int) -> np.ndarray:
        # Heavy-tailed: a wider body, 5% of calls in a Pareto tail, and slower cold starts
        # in the morning ramp-up.
        lat = median * np.exp(0.7 * rng.standard_normal(n)) * np.where((hour >= 7) & (hour < 9), 1.3, 1.0)
        tail = rng.random(n) < 0.05
        lat[tail] += rng.pareto(1.8, int(tail.sum())) * median[tail] * 2
        return lat


SAAS = SaasShape(
    name="saas",
    ident=1,
    models=("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b"),
    model_p=(0.35, 0.38, 0.2, 0.07),
    latency_median=(1.2, 0.6, 1.5, 0.9),
    accuracy=(0.92, 0.88, 0.9, 0.85),
    prices={
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "claude-3-5-sonnet": (3.00, 15.00),
        "llama-3-70b": (0.60, 0.80),
        "gpt-4.1": (2.00, 8.00),
    },
    rollout_model="gpt-4.1",
    rollout_from=("gpt-4o", "gpt-4o-mini"),
    rollout_start=150,
    rollout_days=21,
    endpoints=("chat", "summarize", "rag"),
    endpoint_p=(0.55, 0.25, 0.2),
    input_median=(800.0, 3000.0, 1500.0),
    output_median=250.0,
    error_rate=0.015,
    error_mix={
        "rate_limit_exceeded": 0.3,
        "timeout": 0.2,
        "server_error": 0.3,
        "invalid_request": 0.15,
        "content_filter": 0.05,
    },
    blip_every=15.0,
    features={
        "user_tier": (("free", "pro", "enterprise"), (0.6, 0.3, 0.1)),
        "language": (("en", "de", "fr", "es", "ja"), (0.55, 0.15, 0.12, 0.13, 0.05)),
    },
    drift_feature="language",
    drift_p=(0.40, 0.12, 0.10, 0.10, 0.28),
    experiment="prompt-v2",
    variants=("control", "treatment"),
    experiment_endpoint=0,
    label_endpoint=0,
    label_share=0.2,
    intents=("billing", "technical", "account", "cancel", "other"),
    embedding_endpoint=2,
    embedding_share=0.4,
    embedding_dim=8,
    feedback_share=0.08,
    incident_model="gpt-4o",
    incident_endpoint=0,
)

ENTERPRISE = EnterpriseShape(
    name="enterprise",
    ident=2,
    models=("gemini-1.5-pro", "command-r-plus", "mixtral-8x22b", "claude-3-haiku"),
    model_p=(0.3, 0.25, 0.35, 0.1),
    latency_median=(2.0, 1.4, 1.1, 0.5),
    accuracy=(0.9, 0.86, 0.84, 0.8),
    prices={
        "gemini-1.5-pro": (1.25, 5.00),
        "command-r-plus": (2.50, 10.00),
        "mixtral-8x22b": (1.20, 1.20),
        "claude-3-haiku": (0.25, 1.25),
        "gemini-2.0-flash": (0.10, 0.40),
    },
    rollout_model="gemini-2.0-flash",
    rollout_from=("gemini-1.5-pro", "mixtral-8x22b"),
    rollout_start=80,
    rollout_days=28,
    endpoints=("extract", "classify", "search"),
    endpoint_p=(0.4, 0.35, 0.25),
    input_median=(6000.0, 1200.0, 400.0),
    output_median=400.0,
    error_rate=0.012,
    error_mix={
        "timeout": 0.35,
        "server_error": 0.2,
        "upstream_disconnect": 0.2,  # not a contract error type: counted as "other"
        "rate_limit_exceeded": 0.1,
        "invalid_request": 0.1,
        "content_filter": 0.05,
    },
    blip_every=30.0,
    features={
        "department": (("legal", "finance", "hr", "it", "sales", "ops"), (0.25, 0.2, 0.1, 0.2, 0.15, 0.1)),
        "region": (("emea", "amer", "apac"), (0.45, 0.4, 0.15)),
    },
    drift_feature="department",
    drift_p=(0.1, 0.1, 0.05, 0.15, 0.5, 0.1),
    experiment="retriever-v3",
    variants=("baseline", "candidate"),
    experiment_endpoint=2,
    label_endpoint=1,
    label_share=0.06,
    intents=("invoice", "contract", "resume", "policy", "memo", "report", "letter", "other"),
    embedding_endpoint=2,
    embedding_share=0.5,
    embedding_dim=16,
    feedback_share=0.03,
    columns={
        "timestamp": "created_at",
        "request_id": "req_id",
        "model": "model_name",
        "status": "outcome",
        "endpoint": "route",
        "latency_seconds": "duration_s",
        "input_tokens": "prompt_tokens",
        "output_tokens": "completion_tokens",
        "experiment": "exp_name",
        "variant": "arm",
        "user_id": "account",
        "label": "gold_class",
        "prediction": "pred_class",
        "embedding": "query_vec",
    },
    feedback_table="user_feedback",
    log_cost=False,
    incident_model="command-r-plus",
    incident_endpoint=0,
    unpriced_model="qwen-2.5-72b",
)


class ConsumerShape(Shape):
    def volume(self, day: int, rows: int, slow: Slow) -> int:
        weekday = (START + dt.timedelta(days=day)).weekday()
        weekly = 1.3 if weekday >= 5 else (0.9 if weekday == 0 else 1.0)  # people chat on weekends
        growth = 1.0 + 1.5 * (1.0 - np.exp(-min(day, 364) / 120.0))  # fast early growth, then slower
        payday = 1.1 if (START + dt.timedelta(days=day)).day <= 2 else 1.0
        return max(50, int(rows * weekly * growth * payday * slow.volume_noise[day]))

    def hour_weights(self) -> np.ndarray:
        h = np.arange(24)
        return 0.2 + np.exp(-0.5 * ((h - 20.5) / 2.5) ** 2) + 0.5 * np.exp(-0.5 * ((h - 12.5) / 1.5) ** 2)

    def latency(self, rng: np.random.Generator, median: np.ndarray, hour: np.ndarray, n: int) -> np.ndarray:
        # The evening peak loads the providers: 25% slower from 19:00 to 23:00.
        lat = median * np.exp(0.5 * rng.standard_normal(n)) * np.where((hour >= 19) & (hour < 23), 1.25, 1.0)
        tail = rng.random(n) < 0.02
        lat[tail] += rng.pareto(2.2, int(tail.sum())) * 3
        return lat


CONSUMER = ConsumerShape(
    name="consumer",
    ident=3,
    models=("gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b"),
    model_p=(0.5, 0.3, 0.2),
    latency_median=(0.9, 1.1, 0.5),
    accuracy=(0.93, 0.91, 0.86),
    prices={
        "gpt-4o": (2.50, 10.00),
        "claude-3-5-sonnet": (3.00, 15.00),
        "llama-3.1-70b": (0.60, 0.80),
        "gpt-4.1": (2.00, 8.00),
    },
    rollout_model="gpt-4.1",
    rollout_from=("gpt-4o",),
    rollout_start=200,
    rollout_days=10,
    rollout_to=0.5,
    endpoints=("chat", "caption", "moderate"),
    endpoint_p=(0.7, 0.1, 0.2),
    input_median=(400.0, 1100.0, 150.0),
    output_median=180.0,
    error_rate=0.025,
    error_mix={
        "content_filter": 0.35,
        "rate_limit_exceeded": 0.3,
        "server_error": 0.2,
        "timeout": 0.15,
    },
    blip_every=10.0,
    features={
        "platform": (("ios", "android", "web"), (0.45, 0.4, 0.15)),
        "country": (("us", "gb", "in", "br", "de"), (0.45, 0.15, 0.1, 0.15, 0.15)),
    },
    drift_feature="platform",
    drift_p=(0.2, 0.3, 0.5),
    experiment="onboarding-v2",
    variants=("a", "b"),
    experiment_endpoint=0,
    label_endpoint=2,
    label_share=0.1,
    intents=("safe", "spam", "abuse", "adult", "other"),
    embedding_endpoint=0,
    embedding_share=0.1,
    embedding_dim=32,
    feedback_share=0.05,
    columns={
        "timestamp": "ts",
        "model": "llm",
        "status": "result",
        "latency_seconds": "latency_s",
        "input_tokens": "tokens_in",
        "output_tokens": "tokens_out",
        "experiment": "ab_test",
        "variant": "ab_arm",
    },
    feedback_table="ratings",
    incident_model="claude-3-5-sonnet",
    incident_endpoint=0,
    unpriced_model="gemini-1.5-flash",
    volume_sd=0.12,
    # India grows from 10% to 25% of users over five months: a slow drift, not an incident.
    feature_trend=("country", (0.38, 0.12, 0.25, 0.12, 0.13), 100, 150),
)

GENERATORS = {"saas": SAAS, "enterprise": ENTERPRISE, "consumer": CONSUMER}


@dataclass(frozen=True)
class Slow:
    """State that moves slowly over the year, drawn once per generator and seed."""

    latency_walk: np.ndarray  # multiplier per day
    token_walk: np.ndarray
    volume_noise: np.ndarray
    error_noise: np.ndarray
    accuracy_walk: np.ndarray
    blip_day: np.ndarray  # bool per day
    feature_alpha: float  # Dirichlet concentration of a day's feature mix (natural wobble)


def slow_state(shape: Shape, seed: int) -> Slow:
    g = np.random.default_rng([seed, shape.ident, 0])

    def walk(step: float) -> np.ndarray:
        w = np.cumsum(g.normal(0.0, step, HORIZON))
        return np.asarray(np.exp(w - w[:1]))

    return Slow(
        latency_walk=walk(0.012) * np.exp(g.normal(0, 0.03, HORIZON)),
        token_walk=walk(0.01) * np.exp(g.normal(0, 0.02, HORIZON)),
        volume_noise=np.exp(g.normal(0, shape.volume_sd, HORIZON)),
        error_noise=np.clip(np.exp(g.normal(0, 0.15, HORIZON)), 0.67, 1.33),
        accuracy_walk=np.clip(np.cumsum(g.normal(0, 0.002, HORIZON)), -0.02, 0.02),
        blip_day=g.random(HORIZON) < 1.0 / shape.blip_every,
        feature_alpha=3000.0,
    )


def rollout_share(shape: Shape, day: int) -> float:
    """The new model's share of traffic: 0 before the rollout, rollout_to after it."""
    return shape.rollout_to * float(np.clip((day - shape.rollout_start) / shape.rollout_days, 0.0, 1.0))


def _choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1)


def generate_day(
    shape: Shape, day: int, rows: int, seed: int, slow: Slow, incident: Incident | None = None
) -> tuple[pa.Table, pa.Table]:
    """(interactions, feedback) of day `day` (index from START), in `shape`'s own column
    names. An incident active that day changes its rows; the other rows and every other
    day stay exactly what the normal history draws."""
    rng = np.random.default_rng([seed, shape.ident, day + 1])
    kind = incident.kind if incident is not None and incident.active(day) else None
    date = START + dt.timedelta(days=day)
    n = shape.volume(day, rows, slow)

    hour_w = shape.hour_weights()
    hour = _choice(rng, hour_w, n)
    seconds = hour * 3600 + rng.uniform(0, 3600, n)
    start_us = int(dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC).timestamp() * 1e6)
    ts = (start_us + (seconds * 1e6).astype(np.int64)).astype("datetime64[us]")

    # Models: the rollout takes over a share of traffic from the models it replaces.
    models = [*shape.models, shape.rollout_model]
    p = np.array([*shape.model_p, 0.0])
    share = rollout_share(shape, day)
    if share:
        take = np.array([m in shape.rollout_from for m in models]) * p
        p = p - take / take.sum() * share
        p[-1] = share
    model = _choice(rng, p, n)
    endpoint = _choice(rng, np.array(shape.endpoint_p), n)

    # Tokens: heavy-tailed by endpoint, on a slow walk.
    tw = slow.token_walk[day]
    input_tokens = np.maximum(1, np.array(shape.input_median)[endpoint] * tw * np.exp(0.6 * rng.standard_normal(n)))
    output_tokens = np.maximum(1, shape.output_median * tw * np.exp(0.7 * rng.standard_normal(n)))
    input_tokens = input_tokens.astype(np.int64)
    output_tokens = output_tokens.astype(np.int64)

    # Latency grows with the output, per model, on a slow walk.
    base = np.array([*shape.latency_median, float(np.mean(shape.latency_median))])[model]
    median = base * (0.5 + output_tokens / (2 * shape.output_median)) * slow.latency_walk[day]
    latency = shape.latency(rng, median, hour, n)

    # Errors: 1-2% over the types, plus the occasional 30-minute rate-limit blip.
    statuses = ("ok", *shape.error_mix)
    status = np.zeros(n, dtype=np.int64)
    err = rng.random(n) < shape.error_rate * slow.error_noise[day]
    status[err] = 1 + _choice(rng, np.array(list(shape.error_mix.values())), int(err.sum()))
    blip_at = rng.uniform(0, 86400 - 1800)
    blip_model = int(rng.integers(0, len(shape.models)))
    if slow.blip_day[day]:
        blip = (seconds >= blip_at) & (seconds < blip_at + 1800) & (model == blip_model) & (rng.random(n) < 0.4)
        status[blip] = statuses.index("rate_limit_exceeded")

    # The experiment: a true 50/50 split; the treatment answers ~5% shorter.
    in_exp = endpoint == shape.experiment_endpoint
    arm = rng.integers(0, 2, n)
    treat = in_exp & (arm == 1)
    shorter = np.maximum(1, np.rint(output_tokens[treat] * 0.95)).astype(np.int64)
    latency[treat] *= (0.5 + shorter / (2 * shape.output_median)) / (
        0.5 + output_tokens[treat] / (2 * shape.output_median)
    )
    output_tokens[treat] = shorter

    # Drift features: each day's mix wobbles around its base (and weekends differ a bit).
    weekend = date.weekday() >= 5
    feature_codes = {}
    for fname, (_values, base_p) in shape.features.items():
        bp = np.array(base_p)
        if shape.feature_trend is not None and shape.feature_trend[0] == fname:  # a new market grows slowly
            _, end_p, first, span = shape.feature_trend
            t = float(np.clip((day - first) / span, 0.0, 1.0))
            bp = (1 - t) * bp + t * np.array(end_p)
        if weekend:
            bp = bp * np.linspace(1.1, 0.9, len(bp))
        mix = rng.dirichlet(bp / bp.sum() * slow.feature_alpha)
        feature_codes[fname] = _choice(rng, mix, n)

    # Classification labels on a share of one endpoint's rows.
    on_label_ep = endpoint == shape.label_endpoint
    k = len(shape.intents)
    truth = _choice(rng, np.linspace(2.0, 1.0, k), n)
    acc = np.array([*shape.accuracy, max(shape.accuracy) + 0.01])[model] + slow.accuracy_walk[day]
    right = rng.random(n) < acc
    pred = np.where(right, truth, (truth + rng.integers(1, k, n)) % k)
    labelled = on_label_ep & (rng.random(n) < shape.label_share)

    dim = shape.embedding_dim
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb += (np.arange(dim) < 3) * np.float32(0.5)  # a centre off the origin
    emb += rng.normal(0, 0.01, dim).astype(np.float32)  # the day's wobble
    has_emb = (endpoint == shape.embedding_endpoint) & (rng.random(n) < shape.embedding_share)

    fb_rng = np.random.default_rng([seed, shape.ident, day + 1, 1])
    fb_pick = fb_rng.random(n) < shape.feedback_share
    rating_ok = _choice(fb_rng, np.array([0.2, 0.4, 0.4]), n) + 3
    rating_bad = fb_rng.integers(1, 3, n)

    # -- the incident of the day (its own random stream: the rest stays as drawn) ----------
    g = np.random.default_rng([seed, shape.ident, day + 1, 2])
    models_out = list(models)
    target = models.index(shape.incident_model)
    if kind == "latency_spike":  # the target model on its endpoint, 3x slower for 6 hours
        slow_rows = (model == target) & (endpoint == shape.incident_endpoint) & (hour >= 12) & (hour < 18)
        latency[slow_rows] *= 3.0
    elif kind == "error_burst":  # the target model fails 30% of its calls for 6 hours
        burst = (model == target) & (hour >= 9) & (hour < 15) & (g.random(n) < 0.3)
        status[burst] = statuses.index("server_error")
    elif kind == "cost_spike":  # a prompt change: the target sends 4x the input tokens on its endpoint
        spike = (model == target) & (endpoint == shape.incident_endpoint)
        input_tokens[spike] *= 4
    elif kind == "feature_drift":
        f = shape.drift_feature
        feature_codes[f] = _choice(g, np.array(shape.drift_p), n)
    elif kind == "embedding_drift":
        emb[:, 0] += np.float32(0.5)
    elif kind == "quality_drop":  # the target model's classifier gets worse, its users notice
        worse = model == target
        right2 = g.random(n) < acc - 0.2
        pred = np.where(worse, np.where(right2, truth, (truth + g.integers(1, k, n)) % k), pred)
        rating_ok = np.where(worse, np.maximum(1, rating_ok - 1), rating_ok)
    elif kind == "srm":  # the assignment breaks (a redirect loses treatment units): 55/45
        arm = np.where(in_exp, (g.random(n) < 0.45).astype(np.int64), arm)
    elif kind == "srm_late":  # late in a long experiment, a subtle break: 52/48 from here on
        arm = np.where(in_exp, (g.random(n) < 0.48).astype(np.int64), arm)
    elif kind == "unpriced_model":  # a new model, with no price configured, takes 3% of traffic
        models_out.append(shape.unpriced_model)
        new = g.random(n) < 0.03
        model = np.where(new, len(models_out) - 1, model)

    # No client waits for ever: a call still running at the timeout (the Pareto tail's
    # rare hour-long draw) ends as a timeout error at TIMEOUT_SECONDS.
    hung = latency > TIMEOUT_SECONDS
    latency[hung] = TIMEOUT_SECONDS
    status[hung & (status == 0)] = statuses.index("timeout")
    ok = status == 0
    cost = None
    if shape.log_cost:
        price = np.array([shape.prices.get(m, (np.nan, np.nan)) for m in models_out])[model]
        cost = (input_tokens * price[:, 0] + output_tokens * price[:, 1]) / 1e6

    c = shape.columns.get
    uid = np.minimum(rng.zipf(1.5, n), 50_000)
    cols: dict[str, Any] = {
        c("timestamp", "timestamp"): pa.array(ts, pa.timestamp("us")),
        c("request_id", "request_id"): _prefixed(f"{shape.name}-{date:%Y%m%d}-", np.arange(n)),
        c("model", "model"): _dict(model, tuple(models_out)).cast(pa.string()),
        c("endpoint", "endpoint"): _dict(endpoint, shape.endpoints).cast(pa.string()),
        c("status", "status"): _dict(status, statuses).cast(pa.string()),
        c("latency_seconds", "latency_seconds"): pa.array(np.round(latency, 4)),
        c("input_tokens", "input_tokens"): pa.array(input_tokens),
        c("output_tokens", "output_tokens"): pa.array(output_tokens),
        c("experiment", "experiment"): _masked(
            _dict(np.zeros(n, np.int64), (shape.experiment,)).cast(pa.string()), ~in_exp
        ),
        c("variant", "variant"): _masked(_dict(arm, shape.variants).cast(pa.string()), ~in_exp),
        c("user_id", "user_id"): _prefixed("u", uid),
        c("label", "label"): _masked(_dict(truth, shape.intents).cast(pa.string()), ~labelled),
        c("prediction", "prediction"): _masked(_dict(pred, shape.intents).cast(pa.string()), ~on_label_ep),
        c("embedding", "embedding"): pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), dim),
    }
    name = c("embedding", "embedding")
    cols[name] = _masked(cols[name], ~has_emb)
    if cost is not None:
        cols["cost_usd"] = pa.array(cost, mask=np.isnan(cost))
    for fname, codes in feature_codes.items():
        cols[fname] = _dict(codes, shape.features[fname][0]).cast(pa.string())
    interactions = pa.table(cols)

    pick = np.flatnonzero(fb_pick)
    rating = np.where(ok[pick], rating_ok[pick], rating_bad[pick])
    feedback = pa.table(
        {
            "request_id": interactions.column(c("request_id", "request_id")).take(pa.array(pick)),
            "timestamp": pa.array(ts[pick] + np.timedelta64(90, "s"), pa.timestamp("us")),
            "rating": pa.array(rating.astype(np.int64)),
            "helpful": pa.array(rating >= 4),
            "comment": pa.array([None] * len(pick), pa.string()),
        }
    )
    return interactions, feedback

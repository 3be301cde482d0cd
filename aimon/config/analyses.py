"""The analyses' settings: cost (pricing, budgets), A/B experiments, quality and drift.

One section per analyzer under aimon.tasks; each reads only its own section. The drift
method names are checked against the registry of aimon.stats.stattests (pure numpy and
scipy, below config in the layers), so a typo'd method fails when the file is loaded.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from aimon.config.base import Strict, check_identifier
from aimon.config.costopt import CostOptimisationConfig, ForecastConfig

# -- cost (aimon.tasks.cost) ---------------------------------------------------------


class PriceEntry(Strict):
    model: str
    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(default=None, ge=0)
    effective_from: dt.date


class BudgetConfig(Strict):
    scope: str = "total"
    period: Literal["day", "month"] = "month"
    usd: float = Field(gt=0)
    model: str | None = None  # None: all models


class CostConfig(Strict):
    # Use the gateway's logged cost_usd where present (False), or price every
    # request from the pricing table (True), e.g. after a price correction.
    reprice: bool = False
    forecast: ForecastConfig = ForecastConfig()
    optimisation: CostOptimisationConfig = CostOptimisationConfig()  # aimon.tasks.costopt


# -- A/B experiments (aimon.tasks.abtest) -------------------------------------------

# Interaction columns a metric may use besides the contract's numeric ones: `error`
# is 1 when the status is not ok (an error rate as a binary metric).
AB_DERIVED_COLUMNS = ("error",)


class ABMetricConfig(Strict):
    name: str
    type: Literal["continuous", "binary", "ratio"]
    # continuous / binary: the value column; ratio: numerator and denominator.
    # Interactions: a contract name (latency_seconds, output_tokens, cost_usd, ...),
    # `error`, or another column of the table. Feedback: a column of the feedback table.
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    scale: float = Field(default=1.0, gt=0)  # e.g. 1000 for cost per 1k output tokens
    source: Literal["interactions", "feedback"] = "interactions"
    good: Literal["higher", "lower"]  # the direction that is an improvement
    mde: float | None = Field(default=None, gt=0)  # relative, e.g. 0.05; default: the experiment's

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or v.startswith("__") or len(v) > 100:
            raise ValueError(f"metric name {v!r}: 1-100 characters, not starting with '__'")
        return v

    @model_validator(mode="after")
    def _columns(self) -> ABMetricConfig:
        if self.type == "ratio":
            if not self.numerator or not self.denominator or self.column:
                raise ValueError(f"ratio metric {self.name!r} needs numerator and denominator (and no column)")
            cols = [self.numerator, self.denominator]
        else:
            if not self.column or self.numerator or self.denominator:
                raise ValueError(f"{self.type} metric {self.name!r} needs column (and no numerator/denominator)")
            cols = [self.column]
        for c in cols:
            check_identifier(c, f"column of metric {self.name!r}")
        if self.source == "feedback" and self.type == "ratio":
            raise ValueError(f"metric {self.name!r}: ratio metrics on the feedback table are not supported")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator) if self.type == "ratio" else (self.column,)  # type: ignore[return-value]


class CupedConfig(Strict):
    """CUPED (aimon.stats.cuped): each continuous interactions metric compared per unit,
    adjusted by the unit's value of the same metric before the experiment's first window
    (tasks/abtest/cuped.py, docs/analyses/abtest.md "CUPED")."""

    enabled: bool = True  # where the table has the unit column and rows before the start
    # The randomisation unit: a contract column or a column of the table. None: unit_id
    # when the table maps it, else user_id.
    unit: str | None = None
    lookback_days: int = Field(default=14, ge=1, le=365)  # the pre-period before the first window
    min_units: int = Field(default=50, ge=3)  # per arm, with pre-period data; fewer: not computed

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str | None) -> str | None:
        if v is not None:
            check_identifier(v, "cuped.unit")
        return v


class ExperimentConfig(Strict):
    name: str
    # Local date (windows.timezone) of the first window analysed; None: the first
    # window in which the experiment has rows.
    start: dt.date | None = None
    end: dt.date | None = None  # last local date analysed; later windows repeat the result
    variants: tuple[str, ...] = ("control", "treatment")  # values of the variant column
    control: str = "control"
    split: dict[str, float] | None = None  # expected traffic share per variant; None: equal
    metrics: tuple[ABMetricConfig, ...] = Field(min_length=1)
    sequential: bool = True  # always-valid mSPRT p-values and intervals; False: fixed horizon
    correction: Literal["holm", "bh", "none"] = "holm"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    mde: float = Field(default=0.05, gt=0)  # relative minimum detectable effect, per metric default
    power: float = Field(default=0.8, gt=0.5, lt=1)
    # Sample ratio mismatch: the split is tested on the cumulative counts and on the
    # last N windows for each N in srm_spans (a break late in a long experiment is
    # diluted in the cumulative counts); each span at srm_threshold / spans (Bonferroni).
    # 0.0002, not 0.001: with daily looks 0.001 paged a false SRM in 20% of true 50/50
    # experiment-years (bench/calibrate_srm.py), 0.0002 in 5%.
    srm_threshold: float = Field(default=0.0002, gt=0, lt=0.5)
    srm_spans: tuple[int, ...] = (1, 3, 7)  # windows; [] tests the cumulative split only
    cuped: CupedConfig = Field(default_factory=CupedConfig)

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        where = f"experiment {self.name!r}"
        if len(self.variants) < 2 or len(set(self.variants)) != len(self.variants):
            raise ValueError(f"{where}: variants must list at least two distinct values")
        if any(v.startswith("__") for v in self.variants):
            raise ValueError(f"{where}: variant values must not start with '__'")
        if self.control not in self.variants:
            raise ValueError(f"{where}: control {self.control!r} is not one of the variants {list(self.variants)}")
        if self.split is not None:
            if set(self.split) != set(self.variants):
                raise ValueError(f"{where}: split must give a share for each of {list(self.variants)}")
            if any(w <= 0 for w in self.split.values()):
                raise ValueError(f"{where}: split shares must be positive")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: metric names must be unique")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"{where}: end {self.end} is before start {self.start}")
        if any(n < 1 for n in self.srm_spans) or len(set(self.srm_spans)) != len(self.srm_spans):
            raise ValueError(f"{where}: srm_spans must be distinct window counts of at least 1")
        return self

    @property
    def weights(self) -> dict[str, float]:
        raw = self.split or {v: 1.0 for v in self.variants}
        total = sum(raw.values())
        return {v: raw[v] / total for v in self.variants}


# -- quality (aimon.tasks.quality) ---------------------------------------------------


class EstimationConfig(Strict):
    """Performance estimated without labels from the `confidence` column (NannyML's
    CBPE; aimon.tasks.quality.estimated, docs/analyses/quality.md)."""

    enabled: bool = True  # only where the table has a confidence column
    # P(correct | confidence) per model, fitted on the reference period's labelled rows.
    calibration: Literal["isotonic", "platt"] = "isotonic"
    # Fewer labelled reference rows with a confidence (per model): not estimated.
    min_reference_rows: int = Field(default=500, ge=10)
    # Simulated windows behind the 95% interval; 0: no interval.
    draws: int = Field(default=400, ge=0, le=100_000)


class QualityConfig(Strict):
    """Quality monitoring (aimon.tasks.quality)."""

    # Cut-offs for precision@k, recall@k, NDCG@k and hit rate@k.
    k: tuple[int, ...] = (1, 3, 5, 10)
    # ROUGE and BLEU are pure Python: above this many (response, reference) pairs per
    # model in a window, a seeded random sample of this size is scored instead.
    sample_cap: int = Field(default=2000, ge=10)
    seed: int = 0  # with the window start and the model, fixes which rows are sampled
    bootstrap_iterations: int = Field(default=1000, ge=0)  # 95% intervals; 0: none
    # ROUGE's tokens. "default": rouge-score's own (lower-cased a-z and 0-9 only, so a
    # CJK or Greek text has no tokens and scores 0); "unicode": letters and digits of
    # any script, each Han/kana character a token (those scripts have no spaces),
    # NFKC-normalised and case-folded, Porter stemming on Latin words as rouge-score.
    rouge_tokenizer: Literal["default", "unicode"] = "default"
    # Labels arriving this many days after the request: windows younger than that are
    # marked provisional; rerun (or backfill) them once the labels are in.
    label_delay_days: int = Field(default=0, ge=0)
    # retrieved_ids / relevant_ids held as text: "auto" takes a value starting with
    # '[' as a JSON array and anything else as a delimited list.
    id_format: Literal["auto", "json", "delimited"] = "auto"
    id_delimiter: str = Field(default=",", min_length=1)
    # Also compute the figures per experiment variant (labels experiment, variant).
    by_variant: bool = True
    # The summary names a quality figure that fell at least this much (relative) below
    # its reference, when at least `change_min_sample` rows produced it.
    change_note_ratio: float = Field(default=0.05, gt=0, lt=1)
    change_min_sample: int = Field(default=30, ge=1)
    estimation: EstimationConfig = EstimationConfig()

    @field_validator("k")
    @classmethod
    def _k(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(k < 1 for k in v):
            raise ValueError("k values must be positive integers, at least one")
        return tuple(sorted(set(v)))


# -- drift (aimon.tasks.drift) -------------------------------------------------------


class DriftFeature(Strict):
    """A feature column of the interactions table to watch for drift."""

    name: str
    type: Literal["numerical", "categorical"]
    method: str | None = None  # None: chosen by type and size (Evidently's rules)
    threshold: float | None = None  # for `method`: alpha of a test, or a distance's threshold

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_identifier(v, "drift feature column")

    @field_validator("method")
    @classmethod
    def _method(cls, v: str | None) -> str | None:
        if v is None:
            return v
        # lazy: the registry pulls in scipy (~0.9 s), which `aimon --help` and the
        # alerts commands never need; only a config naming a method pays for it.
        from aimon.stats.stattests import STATTESTS  # noqa: PLC0415

        if v not in STATTESTS:
            raise ValueError(f"unknown drift method {v!r}; valid: {', '.join(sorted(STATTESTS))}")
        return v


class EffectFloors(Strict):
    # A p-value alone never marks a feature drifted: on a million rows every feature
    # is "significant". The effect must also reach its floor (Evidently's large-sample
    # thresholds, so a drift means the same at every n).
    numerical: float = Field(default=0.1, ge=0)  # normalised Wasserstein distance
    categorical: float = Field(default=0.1, ge=0)  # Jensen-Shannon distance


class DriftThresholds(Strict):
    """How a feature's effect is judged: against a bound learned from its own history
    (`learned`), or against the floor alone (`fixed`: drift.effect_floors, or the
    feature's own threshold). docs/analyses/drift.md, "Learned thresholds"."""

    mode: Literal["learned", "fixed"] = "learned"
    # The history: the feature's stored effect scores (data_drift_score) of the previous
    # `windows` windows, leaving out windows where it drifted (an incident is no wobble).
    windows: int = Field(default=28, ge=3)
    # Fewer usable past scores than this: not enough history to learn from; the bound
    # is the floor times `cold_start_factor` (stricter than the floor, as the wobble is
    # unknown yet).
    min_windows: int = Field(default=14, ge=3)
    # The learned bound: median + k x (q - median) of the past scores, q their `quantile`,
    # never below the floor. Order statistics: one odd window moves them by a rank at
    # most, and the 90th percentile follows a weekly cycle that a MAD would not. k = 3
    # puts it at 3.6 sigma of half-normal scores (bench/calibrate_drift.py --year).
    k: float = Field(default=3.5, gt=0)
    quantile: float = Field(default=0.9, gt=0.5, lt=1.0)
    # Cold start: the bound is the floor times this (not for the embeddings' AUC).
    cold_start_factor: float = Field(default=2.0, ge=1.0)
    # rows: learn from each past effect times sqrt(n m / (n + m)) at its window's sizes
    # and judge this window at its own sizes (a thin weekend gets the wider bound its
    # sampling noise needs); none: learn from the raw effects.
    scale: Literal["rows", "none"] = "rows"

    @model_validator(mode="after")
    def _windows(self) -> DriftThresholds:
        if self.min_windows > self.windows:
            raise ValueError(f"drift.thresholds.min_windows ({self.min_windows}) exceeds windows ({self.windows})")
        return self


class DriftMinSample(Strict):
    # Fewer rows behind a feature's figure than this on either side (current window or
    # reference): the feature is not judged (data_drift_judged 0, a note in the summary),
    # as sampling noise alone moves its distance to the floor. At 300 rows the
    # Jensen-Shannon distance between two samples of one 6-category mix is ~0.05 by
    # chance, half the 0.1 floor; at ~60 rows it is ~0.1, the floor itself.
    rows: int = Field(default=300, ge=1)
    # Per feature (a built-in or a drift.features name). The error-type mix is over
    # failed requests only, a few percent of the rows; at 1000 its chance distance is
    # ~0.03, and one 30-minute rate-limit burst of a normal day no longer reads as drift.
    features: dict[str, int] = Field(default_factory=lambda: {"error_type": 1000})

    @field_validator("features")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        bad = sorted(k for k, n in v.items() if n < 1)
        if bad:
            raise ValueError(f"drift.min_sample.features: {', '.join(bad)} must be at least 1")
        return v

    def of(self, feature: str) -> int:
        return self.features.get(feature, self.rows)


class EmbeddingDriftConfig(Strict):
    column: str = "embedding"  # contract name (or mapped column) holding a list of floats
    methods: tuple[Literal["centroid", "domain_classifier", "mmd"], ...] = ("centroid", "domain_classifier", "mmd")
    detect_with: tuple[Literal["domain_classifier", "mmd"], ...] = ("domain_classifier",)
    cap: int = Field(default=5000, ge=50)  # rows per side, subsampled with `seed`
    mmd_cap: int = Field(default=1000, ge=20)  # the MMD kernel matrix is (2 * mmd_cap)^2
    permutations: int = Field(default=200, ge=19)
    seed: int = 0
    auc_threshold: float = Field(default=0.55, gt=0.5, le=1.0)
    # And never below 0.5 + auc_noise_z x the AUC's null spread at the window's sample
    # sizes (aimon.stats.embedding.auc_noise_bound): ~0.59 at 500 current vs 3,500
    # reference rows, auc_threshold itself at the default cap.
    auc_noise_z: float = Field(default=0.0, ge=0)  # 0: off (4.5 tried: it also hid real small-sample shifts)
    # The learned bound (learned: true) is learned in these null-spread units (the
    # embedding_drift_auc_z figure) and never below learned_z_floor of them: 28 past
    # windows estimate a spread roughly, and a bound under 4 sigma pages by chance: at 3
    # (one-sided 1.3e-3 a window, ~0.5 a year from sampling alone) a simulated year's
    # own day-to-day wobble of the embeddings paged twice (z 3.2 and 3.2); at 4 (3e-5 a
    # window) an injected shift still scores z 10 and more.
    learned_z_floor: float = Field(default=4.0, ge=0)
    # The k of that bound (median + k x (q90 - median) of the past z); None: drift.thresholds.k.
    # 3, not the features' 4.5: on windows without drift the z is a standard normal (std
    # 0.93 over the consumer generator's year), so 3 x (q90 - median) is ~3.8 sigma, while a
    # feature's effect wobbles with the traffic itself.
    k: float | None = Field(default=3.0, gt=0)
    # The embeddings' length; a row of another length is rejected (embedding_rows_rejected).
    # None: the most common length among the window's rows read.
    dimension: int | None = Field(default=None, ge=1)
    # Fewer sampled rows than this on either side: not judged (embedding_drift_judged 0);
    # the domain classifier's AUC of two samples of one distribution wobbles by
    # ~0.03 at 200 rows a side, so 0.55 would be crossed by chance below it.
    min_sample: int = Field(default=200, ge=10)
    # The AUC's bound is learned like the features' (drift.thresholds: median + k x
    # (q - median) of its own stored past AUCs, never below auc_threshold; auc_threshold
    # itself before min_windows), when thresholds.mode is learned.
    learned: bool = True

    @field_validator("column")
    @classmethod
    def _col(cls, v: str) -> str:
        return check_identifier(v, "embedding column")


class DriftConfig(Strict):
    features: tuple[DriftFeature, ...] = ()
    builtins: bool = True  # latency, input/output tokens, model/endpoint/error-type mix
    p_value: float = Field(default=0.05, gt=0, lt=1)  # alpha, after Benjamini-Hochberg
    effect_floors: EffectFloors = EffectFloors()
    thresholds: DriftThresholds = DriftThresholds()
    min_sample: DriftMinSample = DriftMinSample()
    # Reference windows where a feature drifted (its stored data_drift_detected is 1) are
    # left out of that feature's reference, so one bad window (a cost spike's tokens, an
    # error burst) does not make the normal windows after it drift. If every reference
    # window drifted, the change has lasted a whole reference span: all of them are used.
    reference_excludes_drifted: bool = True
    dataset_share: float = Field(default=0.5, gt=0, le=1)
    small_sample: int = Field(default=1000, ge=1)  # Evidently: p-value tests up to this many reference rows
    sketch_size: int = Field(default=20_000, ge=100)  # reference points kept per window and feature
    embeddings: EmbeddingDriftConfig | None = EmbeddingDriftConfig()
    html_report: bool = False  # an Evidently HTML report under .aimon/reports/ (slow, ~4 MB)

    @model_validator(mode="after")
    def _unique(self) -> DriftConfig:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"drift.features lists {', '.join(dup)} more than once")
        # The built-ins' names (aimon.tasks.drift.features), so a typo'd key is an error.
        known = {"latency_seconds", "input_tokens", "output_tokens", "model", "endpoint", "error_type", *names}
        unknown = sorted(set(self.min_sample.features) - known)
        if unknown:
            raise ValueError(
                f"drift.min_sample.features: {', '.join(unknown)} is not a drift feature "
                f"(built-ins and drift.features: {', '.join(sorted(known))})"
            )
        return self

"""One YAML file, validated once into a frozen pydantic tree and passed down.

Lookup order: an explicit path (``--config``), then ``AIMON_CONFIG``, then
``configs/monitoring.yaml``. Unknown keys are errors naming the key and the file,
because a typo'd key that is silently ignored is a monitor that silently does less.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aimon.config.alerts import AlertsConfig
from aimon.errors import ConfigError

DEFAULT_CONFIG = Path("configs/monitoring.yaml")

# The data contract (DESIGN.md). Required columns first.
REQUIRED_COLUMNS = ("timestamp", "model", "status")
OPTIONAL_COLUMNS = (
    "request_id",
    "endpoint",
    "latency_seconds",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "experiment",
    "variant",
    "user_id",
    "prompt",
    "response",
    "reference",
    "label",
    "prediction",
    "retrieved_ids",
    "relevant_ids",
    "embedding",
)
CONTRACT_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Identifiers from the config are always quoted by SQLAlchemy; this check only keeps
# out names that cannot be a sane table or column (quotes, semicolons, control chars).
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$ \-]{0,126}$")


def check_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid identifier "
            "(letters, digits, _, $, space and - only, starting with a letter or _)"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(_Strict):
    url: str = "duckdb:///.aimon/warehouse.duckdb"
    interactions_table: str = "interactions"
    feedback_table: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("interactions_table", "feedback_table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is None:
            return v
        for part in v.split("."):
            check_identifier(part, "table name")
        if v.count(".") > 1:
            raise ValueError(f"table name {v!r}: use 'table' or 'schema.table'")
        return v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str]) -> dict[str, str]:
        for key, col in v.items():
            if key not in CONTRACT_COLUMNS:
                raise ValueError(f"{key!r} is not a data-contract column; valid: {', '.join(CONTRACT_COLUMNS)}")
            check_identifier(col, f"column for {key!r}")
        return v


class StoreConfig(_Strict):
    url: str | None = None  # default: the warehouse URL
    metrics_table: str = "monitoring_metrics"
    runs_table: str = "monitoring_runs"
    ab_stats_table: str = "monitoring_ab_stats"  # per-window A/B sufficient statistics

    @field_validator("metrics_table", "runs_table")
    @classmethod
    def _table(cls, v: str) -> str:
        return check_identifier(v, "table name")

    @field_validator("ab_stats_table")
    @classmethod
    def _ab_table(cls, v: str) -> str:
        return check_identifier(v, "table name")


class WindowsConfig(_Strict):
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown timezone {v!r} (use an IANA name like Europe/Berlin)") from err
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class BaselinePeriod(_Strict):
    start: dt.date
    end: dt.date


class ReferenceConfig(_Strict):
    previous_windows: int | None = Field(default=7, ge=1)
    baseline: BaselinePeriod | None = None


class PriceEntry(_Strict):
    model: str
    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(default=None, ge=0)
    effective_from: dt.date


class BudgetConfig(_Strict):
    scope: str = "total"
    period: Literal["day", "month"] = "month"
    usd: float = Field(gt=0)
    model: str | None = None  # None: all models


class CostConfig(_Strict):
    # Use the gateway's logged cost_usd where present (False), or price every
    # request from the pricing table (True), e.g. after a price correction.
    reprice: bool = False


class ContractConfig(_Strict):
    # Rows with a null timestamp belong to no window; they are counted table-wide on
    # each run (one indexed or columnar scan) so they are never silently lost.
    check_null_timestamps: bool = True


# -- A/B experiments (tasks/abtest.py) ---------------------------------------------

# Interaction columns a metric may use besides the contract's numeric ones: `error`
# is 1 when the status is not ok (an error rate as a binary metric).
AB_DERIVED_COLUMNS = ("error",)


class ABMetricConfig(_Strict):
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


class ExperimentConfig(_Strict):
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
    srm_threshold: float = Field(default=0.001, gt=0, lt=0.5)

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
        return self

    @property
    def weights(self) -> dict[str, float]:
        raw = self.split or {v: 1.0 for v in self.variants}
        total = sum(raw.values())
        return {v: raw[v] / total for v in self.variants}


class QualityConfig(_Strict):
    """Quality monitoring (tasks/quality.py)."""

    # Cut-offs for precision@k, recall@k, NDCG@k and hit rate@k.
    k: tuple[int, ...] = (1, 3, 5, 10)
    # ROUGE and BLEU are pure Python: above this many (response, reference) pairs per
    # model in a window, a seeded random sample of this size is scored instead.
    sample_cap: int = Field(default=2000, ge=10)
    seed: int = 0  # with the window start and the model, fixes which rows are sampled
    bootstrap_iterations: int = Field(default=1000, ge=0)  # 95% intervals; 0: none
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

    @field_validator("k")
    @classmethod
    def _k(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(k < 1 for k in v):
            raise ValueError("k values must be positive integers, at least one")
        return tuple(sorted(set(v)))


class DriftFeature(_Strict):
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
        from aimon.stats.stattests import STATTESTS  # numpy/scipy only; no import cycle

        if v not in STATTESTS:
            raise ValueError(f"unknown drift method {v!r}; valid: {', '.join(sorted(STATTESTS))}")
        return v


class EffectFloors(_Strict):
    # A p-value alone never marks a feature drifted: on a million rows every feature
    # is "significant". The effect must also reach its floor (Evidently's large-sample
    # thresholds, so a drift means the same at every n).
    numerical: float = Field(default=0.1, ge=0)  # normalised Wasserstein distance
    categorical: float = Field(default=0.1, ge=0)  # Jensen-Shannon distance


class EmbeddingDriftConfig(_Strict):
    column: str = "embedding"  # contract name (or mapped column) holding a list of floats
    methods: tuple[Literal["centroid", "domain_classifier", "mmd"], ...] = ("centroid", "domain_classifier", "mmd")
    detect_with: tuple[Literal["domain_classifier", "mmd"], ...] = ("domain_classifier",)
    cap: int = Field(default=5000, ge=50)  # rows per side, subsampled with `seed`
    mmd_cap: int = Field(default=1000, ge=20)  # the MMD kernel matrix is (2 * mmd_cap)^2
    permutations: int = Field(default=200, ge=19)
    seed: int = 0
    auc_threshold: float = Field(default=0.55, gt=0.5, le=1.0)

    @field_validator("column")
    @classmethod
    def _col(cls, v: str) -> str:
        return check_identifier(v, "embedding column")


class DriftConfig(_Strict):
    features: tuple[DriftFeature, ...] = ()
    builtins: bool = True  # latency, input/output tokens, model/endpoint/error-type mix
    p_value: float = Field(default=0.05, gt=0, lt=1)  # alpha, after Benjamini-Hochberg
    effect_floors: EffectFloors = EffectFloors()
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
        return self


class PushgatewayConfig(_Strict):
    url: str | None = None  # absent: no push
    job: str = "aimon"
    # Every push has a timeout; connection errors, timeouts, 429 and 5xx are retried
    # `attempts` times in all, waiting backoff_seconds, then twice that, ...
    timeout_seconds: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL (e.g. http://127.0.0.1:9091)")
        return v

    @field_validator("job")
    @classmethod
    def _job(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError(f"job {v!r} must be non-empty and hold no '/'")
        return v


class OrchestrationConfig(_Strict):
    """Scheduling, claims, retries and fan-out (README "Deploying schedules", "Backfills")."""

    # A scheduled run first runs up to this many missed windows before its own (windows
    # with no finished run), oldest first; 0 turns catch-up off.
    catchup_windows: int = Field(default=3, ge=0)
    # A run claims its window before it starts; a claim older than this is stale (the
    # run was killed) and the window can be claimed again. Keep it above the longest run.
    claim_expires_after_seconds: float = Field(default=3600.0, gt=0)
    # Every task of a run gives up after this long (the whole run is bounded too).
    task_timeout_seconds: float = Field(default=1800.0, gt=0)
    # Transient warehouse errors only (connection refused, timeouts, deadlocks,
    # serialization failures) are retried, with exponential backoff from this delay.
    retries: int = Field(default=3, ge=0)
    retry_delay_seconds: float = Field(default=5.0, ge=0)
    # Backfill defaults (the CLI flags and the deployment's parameters override them).
    backfill_concurrency: int = Field(default=2, ge=1)
    backfill_order: Literal["oldest", "newest"] = "oldest"
    # Where the analyzers of one run execute: Prefect's thread pool in the flow's
    # process, or a Dask cluster through prefect-dask (pip install 'aimon[dask]'):
    # dask_address null starts a LocalCluster of dask_workers processes on 127.0.0.1;
    # "tcp://scheduler:8786" uses a running cluster. The warehouse must then be reachable
    # from the workers (a server database: a DuckDB file opens in one process only).
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None
    dask_workers: int = Field(default=2, ge=1)
    # Split each window into this many equal time segments for the statistics that read
    # rows (drift's numerical features and embedding subsample, RAG's per-query sums;
    # README "Scaling out"): each segment is read and summarised in its own task (on the
    # Dask workers with task_runner: dask; one after another in the analyzer's thread
    # otherwise, which bounds memory), and the summaries are merged. 1 (the default)
    # reads the window in one go. Capped: every segment is a task and its summary is
    # held by the process that merges them.
    segments: int = Field(default=1, ge=1, le=1000)


class Config(_Strict):
    warehouse: WarehouseConfig
    store: StoreConfig = StoreConfig()
    windows: WindowsConfig = WindowsConfig()
    reference: ReferenceConfig = ReferenceConfig()
    pricing: tuple[PriceEntry, ...] = ()
    budgets: tuple[BudgetConfig, ...] = ()
    cost: CostConfig = CostConfig()
    contract: ContractConfig = ContractConfig()
    pushgateway: PushgatewayConfig = PushgatewayConfig()
    experiments: tuple[ExperimentConfig, ...] = ()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    alerts: AlertsConfig = AlertsConfig()  # rules, routes, channels (aimon/alert_config.py)
    quality: QualityConfig = QualityConfig()
    drift: DriftConfig = DriftConfig()

    # Where the file came from, for messages; not a YAML key.
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _unique_budget_scopes(self) -> Config:
        seen = set()
        for b in self.budgets:
            if (b.scope, b.period) in seen:
                raise ValueError(f"budgets: scope {b.scope!r} has two {b.period} budgets")
            seen.add((b.scope, b.period))
        return self

    @model_validator(mode="after")
    def _unique_experiments(self) -> Config:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("experiments: names must be unique")
        return self

    @property
    def store_url(self) -> str:
        return self.store.url or self.warehouse.url


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    if path:
        return Path(path)
    env = os.environ.get("AIMON_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p != "source")
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}' in {source}")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{loc}' in {source}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"bad value for '{loc}' in {source}: {msg} (got {e.get('input')!r})")
    return "; ".join(lines)


def parse_config(data: dict[str, Any], source: str = "<memory>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    data = dict(data)
    if "source" in data:
        raise ConfigError(f"unknown key 'source' in {source}")
    env_url = os.environ.get("AIMON_WAREHOUSE_URL")
    if env_url:
        data["warehouse"] = {**(data.get("warehouse") or {}), "url": env_url}
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    p = resolve_path(path)
    if not p.is_file():
        raise ConfigError(
            f"config file {p} not found: pass --config PATH, set AIMON_CONFIG, or create {DEFAULT_CONFIG}"
        )
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{p} is not valid YAML: {err}") from None
    return parse_config(data, source=str(p))

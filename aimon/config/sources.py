"""Where the data comes from and where the figures go: the warehouse and its data
contract, the metric store, windows, the reference period, the Pushgateway.

These are the sections every analysis reads through (aimon.warehouse, aimon.store,
aimon.windows); the analyses' own settings are in aimon.config.analyses.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from aimon.config.base import Strict, check_identifier

# Error types of the contract; any other non-"ok" status counts as "other".
ERROR_TYPES = (
    "rate_limit_exceeded",
    "invalid_request",
    "timeout",
    "content_filter",
    "model_not_found",
    "server_error",
)

# The data contract (docs/warehouse.md). Required columns first.
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
    "unit_id",
    "prompt",
    "prompt_hash",
    "finish_reason",
    "response",
    "reference",
    "label",
    "prediction",
    "confidence",
    "retrieved_ids",
    "relevant_ids",
    "embedding",
    "response_embedding",
    "reference_embedding",
)
CONTRACT_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# What each contract column may be stored as, by kind of the engine's type name
# (docs/warehouse.md, "Column types"); a column whose type the engine does not report is
# not checked.
_ID = ("text", "integer", "uuid")
_LIST = ("list", "json", "text")
COLUMN_KINDS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp",),
    "request_id": _ID,
    "user_id": _ID,
    "unit_id": _ID,
    "prompt_hash": _ID,
    "latency_seconds": ("numeric", "integer"),
    "cost_usd": ("numeric", "integer"),
    "input_tokens": ("integer", "numeric"),
    "output_tokens": ("integer", "numeric"),
    "cached_input_tokens": ("integer", "numeric"),
    "label": ("text", "integer", "numeric", "boolean"),
    "prediction": ("text", "integer", "numeric", "boolean"),
    "confidence": ("numeric", "integer"),
    "retrieved_ids": _LIST,
    "relevant_ids": _LIST,
    "embedding": _LIST,
    "response_embedding": _LIST,
    "reference_embedding": _LIST,
}  # every other contract column: text
_NUMERIC = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC", "NUMBER")
_TEXT = ("CHAR", "TEXT", "STRING", "CLOB")


def type_kind(type_name: str) -> str | None:
    """timestamp, integer, numeric, text, boolean, uuid, list, json, date; or the type
    itself (struct, blob, ...); None when the engine reports no type (a SQLite view)."""
    t = type_name.strip().upper()
    # PostgreSQL enums and domains are not checked; DuckDB's "NULL" type is a column that
    # holds nothing but nulls (e.g. labels not logged yet): no value to misread.
    if not t or t in ("USER-DEFINED", '"NULL"', "NULL"):
        return None
    if t.endswith("]") or t.startswith(("ARRAY", "LIST", "_")):
        return "list"
    for word, kind in (("JSON", "json"), ("TIMESTAMP", "timestamp"), ("DATETIME", "timestamp")):
        if word in t:
            return kind
    if t.startswith(("STRUCT", "MAP", "UNION", "INTERVAL", "BLOB", "BYTEA")) or t == "DATE":
        return t.split("(")[0].lower()
    if "BOOL" in t:
        return "boolean"
    if "UUID" in t:
        return "uuid"
    if "INT" in t:
        return "integer"
    if any(w in t for w in _NUMERIC):
        return "numeric"
    if any(w in t for w in _TEXT):
        return "text"
    return t.lower()


class WarehouseConfig(Strict):
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


class StoreConfig(Strict):
    url: str | None = None  # default: the warehouse URL
    metrics_table: str = "monitoring_metrics"
    runs_table: str = "monitoring_runs"
    ab_stats_table: str = "monitoring_ab_stats"  # per-window A/B sufficient statistics
    # An embedded DuckDB file takes one process at a time: a run that finds it locked by
    # another process waits this long, then is skipped (same window) or fails naming it.
    lock_timeout_seconds: float = Field(default=60.0, ge=0)

    @field_validator("metrics_table", "runs_table")
    @classmethod
    def _table(cls, v: str) -> str:
        return check_identifier(v, "table name")

    @field_validator("ab_stats_table")
    @classmethod
    def _ab_table(cls, v: str) -> str:
        return check_identifier(v, "table name")


class WindowsConfig(Strict):
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


class BaselinePeriod(Strict):
    start: dt.date
    end: dt.date


class ReferenceConfig(Strict):
    previous_windows: int | None = Field(default=7, ge=1)
    baseline: BaselinePeriod | None = None


class ContractConfig(Strict):
    # Rows with a null timestamp belong to no window; they are counted table-wide on
    # each run (one indexed or columnar scan) so they are never silently lost.
    check_null_timestamps: bool = True


class PushgatewayConfig(Strict):
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

"""One interaction in the data contract's terms (docs/warehouse.md): the columns a
logged row may carry, their checks, and the table the warehouse sink creates.

Checks are cheap and in one place: the logger runs them at the call in strict mode and
in its flusher otherwise (a bad row is counted by reason and dropped, never raised into
the request path); `aimon ingest` runs the same on every line it reads.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import orjson
from orjson import loads as loads  # the ingest commands' JSON: 3-5x the stdlib's speed

from aimon.config.sources import ERROR_TYPES
from aimon.errors import CaptureError

UTC = dt.UTC

# Column -> (kind, SQL type of the table the sink creates). Kinds: text, int (>= 0),
# float (>= 0), any (label/prediction: text, number or bool), ids (list of text),
# vector (list of floats), ts.
COLUMNS: dict[str, tuple[str, str]] = {
    "timestamp": ("ts", "TIMESTAMP"),
    "request_id": ("text", "VARCHAR"),
    "model": ("text", "VARCHAR"),
    "endpoint": ("text", "VARCHAR"),
    "status": ("text", "VARCHAR"),
    "latency_seconds": ("float", "DOUBLE PRECISION"),
    "input_tokens": ("int", "BIGINT"),
    "output_tokens": ("int", "BIGINT"),
    "cached_input_tokens": ("int", "BIGINT"),
    "cost_usd": ("float", "DOUBLE PRECISION"),
    "experiment": ("text", "VARCHAR"),
    "variant": ("text", "VARCHAR"),
    "user_id": ("text", "VARCHAR"),
    "prompt": ("text", "VARCHAR"),
    "prompt_hash": ("text", "VARCHAR"),
    "response": ("text", "VARCHAR"),
    "finish_reason": ("text", "VARCHAR"),
    "label": ("any", "VARCHAR"),
    "prediction": ("any", "VARCHAR"),
    "confidence": ("float", "DOUBLE PRECISION"),
    "retrieved_ids": ("ids", "VARCHAR"),  # JSON text: portable across engines (the contract takes json/text lists)
    "relevant_ids": ("ids", "VARCHAR"),
    "embedding": ("vector", "VARCHAR"),
    "metadata": ("json", "VARCHAR"),
}
REQUIRED = ("timestamp", "request_id", "model", "status")
STATUSES = ("ok", *ERROR_TYPES)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check(row: Mapping[str, Any], features: Mapping[str, str] | None = None) -> str | None:
    """None when `row` holds to the contract, else the reason it does not, naming the
    column ("missing model", "negative input_tokens", "input_tokens is not an integer:
    '12'"). `features`: the extra columns the table carries (name -> SQL type)."""
    for name in REQUIRED:
        v = row.get(name)
        if v is None or v == "":
            return f"missing {name}"
    for name, v in row.items():
        if v is None:
            continue
        spec = COLUMNS.get(name)
        if spec is None:
            if features is None or name not in features:
                return f"unknown column {name}"
            if not isinstance(v, (str, int, float, bool)):
                return f"{name} is not a scalar: {type(v).__name__}"
            continue
        kind = spec[0]
        if kind == "text" and not isinstance(v, str):
            return f"{name} is not text: {v!r:.40}"
        if kind == "int":
            if not _is_int(v):
                return f"{name} is not an integer: {v!r:.40}"
            if v < 0:
                return f"negative {name}"
        elif kind == "float":
            if not _is_num(v):
                return f"{name} is not a finite number: {v!r:.40}"
            if v < 0:
                return f"negative {name}"
        elif kind == "ts" and not isinstance(v, dt.datetime):
            return f"{name} is not a datetime: {v!r:.40}"
        elif kind == "any" and not isinstance(v, (str, int, float, bool)):
            return f"{name} is not text, a number or a bool: {v!r:.40}"
        elif kind == "ids" and not (isinstance(v, (list, tuple)) and all(isinstance(i, (str, int)) for i in v)):
            return f"{name} is not a list of ids"
        elif kind == "vector" and not (isinstance(v, (list, tuple)) and all(_is_num(x) for x in v)):
            return f"{name} is not a list of numbers"
        elif kind == "json" and not isinstance(v, Mapping):
            return f"{name} is not a mapping"
    cached, inp = row.get("cached_input_tokens"), row.get("input_tokens")
    if isinstance(cached, int) and isinstance(inp, int) and cached > inp:
        return "cached_input_tokens above input_tokens"
    return None


def utc_naive(ts: dt.datetime) -> dt.datetime:
    """The warehouse's UTC timestamp: an aware datetime converted, a naive one taken as UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def create_table_sql(table: str, features: Mapping[str, str] | None = None, *, unique: bool = True) -> str:
    """CREATE TABLE IF NOT EXISTS for the contract table, request_id unique (what makes
    loading idempotent)."""
    cols = [f'"{name}" {sqltype}' for name, (_, sqltype) in COLUMNS.items()]
    cols += [f'"{name}" {sqltype}' for name, sqltype in (features or {}).items()]
    if unique:
        cols[1] = '"request_id" VARCHAR NOT NULL UNIQUE'
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({", ".join(cols)})'


_JSONL = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


def to_jsonl(row: Mapping[str, Any]) -> bytes:
    """One JSONL line, newline included (the JSONL sink's and the spool's format;
    `aimon ingest jsonl` reads it back): the timestamp as ISO 8601 UTC, None values
    left out. orjson: the flusher holds the GIL ~10x shorter than with the stdlib's
    json, which is what the app's event loop waits behind."""
    out = {k: v for k, v in row.items() if v is not None}
    ts = out.get("timestamp")
    if isinstance(ts, dt.datetime) and ts.tzinfo is not None:
        out["timestamp"] = utc_naive(ts)
    return orjson.dumps(out, option=_JSONL)


def to_json(row: Mapping[str, Any]) -> str:
    """to_jsonl() as a str, without the newline."""
    return to_jsonl(row)[:-1].decode()


def from_json(obj: Any) -> dict[str, Any]:
    """A row from one parsed JSONL line; the timestamp parsed (ISO 8601, or epoch
    seconds). Raises CaptureError with the reason when the line is not a row."""
    if not isinstance(obj, dict):
        raise CaptureError(f"not a JSON object: {type(obj).__name__}")
    row = dict(obj)
    ts = row.get("timestamp")
    if isinstance(ts, str):
        try:
            row["timestamp"] = utc_naive(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")))
        except ValueError:
            raise CaptureError(f"timestamp is not ISO 8601: {ts!r:.40}") from None
    elif isinstance(ts, (int, float)) and _is_num(ts):
        row["timestamp"] = dt.datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
    return row

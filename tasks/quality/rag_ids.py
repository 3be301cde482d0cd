"""Reading RAG id lists: native lists, JSON arrays or delimited text, into id strings.
`parse_id_lists` is the plain-Python definition (one value at a time); `id_lists` gives
the same result with Arrow kernels, at column speed, flattened into `IdLists`. Apart
from the ranking (rag.py) because parsing is where the input formats live.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _ids_from_text(text: str, fmt: str, delimiter: str) -> list[str] | None:
    """Ids of one text value, or None when it cannot be read."""
    s = text.strip()
    if fmt == "json" or (fmt == "auto" and s.startswith("[")):
        try:
            v = json.loads(s)
        except ValueError:
            return None
        if not isinstance(v, list) or any(isinstance(x, (list, dict)) or x is None for x in v):
            return None
        return [_id(x) for x in v]
    return [p.strip() for p in s.split(delimiter) if p.strip()]


def _id(x: Any) -> str:
    # JSON 3 and the text "3" are the same document; booleans are not ids.
    if isinstance(x, bool):
        return str(x).lower()
    return str(x)


def parse_id_lists(
    values: pa.Array | pa.ChunkedArray | Sequence[Any], fmt: str = "auto", delimiter: str = ","
) -> tuple[list[list[str] | None], np.ndarray]:
    """Each value as a list of id strings (None for null), and a mask of values that
    could not be read (not JSON, not a list, nested values)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pylist()
    out: list[list[str] | None] = []
    bad = np.zeros(len(values), dtype=bool)
    cache: dict[str, list[str] | None] = {}
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if isinstance(v, str):
            ids = cache[v] if v in cache else cache.setdefault(v, _ids_from_text(v, fmt, delimiter))
        elif isinstance(v, (list, tuple, np.ndarray)):
            ids = None if any(isinstance(x, (list, dict)) or x is None for x in v) else [_id(x) for x in v]
        else:
            ids = None
        if ids is None:
            bad[i] = True
        out.append(ids)
    return out, bad


# A flat JSON array of numbers and plain strings (no escapes, no commas inside): the
# common case, split with Arrow kernels; anything else goes through json.loads.
_SIMPLE_JSON = r'^\[\s*(?:(?:"[^"\\,]*"|-?[0-9]+)\s*(?:,\s*(?:"[^"\\,]*"|-?[0-9]+)\s*)*)?\]$'
_SEP = "\x1f"  # the ASCII unit separator: not in any sane id


@dataclass(frozen=True)
class IdLists:
    """Id lists of n rows, flattened: ids[i] belongs to row parent[i], in list order."""

    n: int
    parent: np.ndarray
    ids: pa.Array  # strings
    null: np.ndarray  # the row's value is null
    bad: np.ndarray  # the row's value could not be read


def id_lists(values: pa.Array | pa.ChunkedArray, fmt: str = "auto", delimiter: str = ",") -> IdLists:
    """Read a column of id lists (native lists, JSON arrays or delimited text) with
    Arrow kernels; the same result as `parse_id_lists`, at column speed."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(arr)
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)) and not pa.types.is_nested(arr.type.value_type):
        flat = arr.flatten()
        parent = np.asarray(pc.list_parent_indices(arr).to_numpy(zero_copy_only=False), dtype=np.int64)
        item_null = np.asarray(flat.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        bad = np.zeros(n, dtype=bool)
        bad[parent[item_null]] = True
        keep = ~bad[parent]
        return IdLists(n, parent[keep], _text(flat).filter(pa.array(keep)), null, bad)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        # Other types (nested lists, types of other engines): one row at a time.
        return _id_lists_python(arr.to_pylist(), fmt, delimiter)
    text = pc.utf8_trim_whitespace(arr)
    valid = ~null
    if fmt == "json":
        json_rows = valid
    elif fmt == "auto":
        json_rows = valid & np.asarray(pc.starts_with(text, "[").to_numpy(zero_copy_only=False), dtype=bool)
    else:
        json_rows = np.zeros(n, dtype=bool)
    simple = np.asarray(
        pc.fill_null(pc.match_substring_regex(text, _SIMPLE_JSON), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    slow = json_rows & ~simple
    from_json = pc.replace_substring(pc.replace_substring_regex(text, r'[\[\]"]', ""), ",", _SEP)
    joined = pc.if_else(pa.array(json_rows), from_json, pc.replace_substring(text, delimiter, _SEP))
    bad = np.zeros(n, dtype=bool)
    if slow.any():
        rows = np.flatnonzero(slow)
        parsed, bad_slow = parse_id_lists(arr.take(pa.array(rows)), fmt, delimiter)
        bad[rows[bad_slow]] = True
        fixed = [None if ids is None else _SEP.join(ids) for ids in parsed]
        pos = np.full(n, -1)
        pos[rows] = np.arange(len(rows))
        joined = pc.if_else(pa.array(slow), pa.array(fixed, pa.string()).take(pa.array(pos, mask=pos < 0)), joined)
    lists = pc.split_pattern(pc.if_else(pa.array(bad | null), pa.scalar(None, pa.string()), joined), _SEP)
    parent = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    ids = pc.utf8_trim_whitespace(lists.flatten())
    keep = np.asarray(pc.not_equal(ids, "").to_numpy(zero_copy_only=False), dtype=bool)
    return IdLists(n, parent[keep], ids.filter(pa.array(keep)), null, bad)


def _text(arr: pa.Array) -> pa.Array:
    if pa.types.is_boolean(arr.type):
        return pc.if_else(arr, "true", "false")
    return pc.cast(arr, pa.string())


def _id_lists_python(values: Sequence[Any], fmt: str, delimiter: str) -> IdLists:
    parsed, bad = parse_id_lists(values, fmt, delimiter)
    parent = np.array([i for i, ids in enumerate(parsed) if ids for _ in ids], dtype=np.int64)
    ids = pa.array([x for ids in parsed if ids for x in ids], pa.string())
    null = np.array([v is None for v in values], dtype=bool)
    return IdLists(len(values), parent, ids, null, bad)

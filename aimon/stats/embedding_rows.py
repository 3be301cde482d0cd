"""Embedding rows, parsed one by one: a malformed row is left out and counted, never fatal.

An embedding column holds Arrow lists (DuckDB LIST or ARRAY, PostgreSQL float8[]) or JSON
text. A row is usable when it is a list of finite numbers (finite as float32, the
precision the samples keep) whose length is the window's dimension: the configured one
(`drift.embeddings.dimension`), else the most common length among the window's usable
rows read (a tie goes to the smaller length). Every other row is rejected with the
first reason that fits, in this order:

- `not_json`: text that does not parse as JSON;
- `not_a_list`: a value (or parsed JSON) that is not a list, e.g. a number or an object;
- `non_numeric`: a list holding something that is not a number (text, null, a list);
- `nonfinite`: a list holding NaN or an infinity (or a number too big for float32);
- `wrong_dimension`: a list of numbers of another length (an empty list always).

A window's embeddings may be read in parts (time segments, each on its own worker): a
part keeps only the sampled rows, plus its counts of lengths and problems over every row
it read, so the window's dimension and its rejection counts come out the same as one read.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Parsing problems, in the order they are checked; 0 in EmbeddingRows.problem is "none".
PROBLEMS = ("not_json", "not_a_list", "non_numeric", "nonfinite")
REASONS = (*PROBLEMS, "wrong_dimension")  # every reason a row is rejected for
_NOT_JSON, _NOT_A_LIST, _NON_NUMERIC, _NONFINITE = range(1, len(PROBLEMS) + 1)


@dataclass(frozen=True, eq=False)
class EmbeddingRows:
    """Parsed rows: each row's elements (for rows without a problem) or its problem."""

    values: np.ndarray  # float32: the elements of the rows without a problem, row after row
    offsets: np.ndarray  # int64, rows + 1: row i is values[offsets[i]:offsets[i + 1]]
    problem: np.ndarray  # int8 per row: 0, or 1 + the index of its problem in PROBLEMS

    def __len__(self) -> int:
        return len(self.problem)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, positions: np.ndarray) -> EmbeddingRows:
        """The rows at `positions` (sorted), in that order."""
        lengths = self.lengths[positions]
        offsets = _offsets(lengths)
        # Element k of the result is element (k - its row's new start) of that row's old start.
        idx = np.repeat(self.offsets[positions] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return EmbeddingRows(self.values[idx], offsets, self.problem[positions])

    def dimensions(self) -> dict[int, int]:
        """Length -> rows, over the rows without a problem."""
        ok = self.lengths[self.problem == 0]
        return {int(k): int(v) for k, v in zip(*np.unique(ok, return_counts=True), strict=True)}

    def problems(self) -> dict[str, int]:
        counts = np.bincount(self.problem, minlength=len(PROBLEMS) + 1)
        return {name: int(counts[i + 1]) for i, name in enumerate(PROBLEMS)}

    def matrix(self, dimension: int) -> np.ndarray:
        """The usable rows (no problem, `dimension` long) as rows x dimension float32."""
        keep = (self.problem == 0) & (self.lengths == dimension)
        if not keep.any():
            return np.empty((0, 0), np.float32)
        idx = np.repeat(self.offsets[:-1][keep], dimension) + np.tile(np.arange(dimension), int(keep.sum()))
        return self.values[idx].reshape(-1, dimension)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def parse_rows(column: Any) -> EmbeddingRows:
    """Every non-null row of an Arrow column (or a list of lists / JSON strings), parsed."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        column = column.drop_null()
        t = column.type
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return _parse_arrow_lists(column)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)):
            n = len(column)  # numbers, structs, ...: no row is a list
            return EmbeddingRows(np.empty(0, np.float32), np.zeros(n + 1, np.int64), np.full(n, _NOT_A_LIST, np.int8))
        column = column.to_pylist()
    return _parse_python([v for v in column if v is not None])


def _parse_arrow_lists(column: pa.Array) -> EmbeddingRows:
    n = len(column)
    if pa.types.is_fixed_size_list(column.type):
        lengths = np.full(n, column.type.list_size, np.int64)
    else:
        lengths = np.asarray(column.value_lengths().to_numpy(zero_copy_only=False), np.int64)
    flat = column.flatten()
    vt = flat.type
    numeric = pa.types.is_integer(vt) or pa.types.is_floating(vt) or pa.types.is_decimal(vt)
    if not numeric:  # text, nested lists, booleans: every non-empty row is non-numeric
        problem = np.where(lengths > 0, _NON_NUMERIC, 0).astype(np.int8)
        return EmbeddingRows(np.empty(0, np.float32), np.zeros(n + 1, np.int64), problem)
    row_of = np.repeat(np.arange(n), lengths)
    nulls = np.asarray(flat.is_null().to_numpy(zero_copy_only=False), bool)
    with np.errstate(over="ignore", invalid="ignore"):  # too big for float32: inf, rejected below
        values = np.asarray(pc.cast(flat, pa.float64()).to_numpy(zero_copy_only=False), np.float64).astype(np.float32)
    bad_value = ~np.isfinite(values) & ~nulls
    problem = np.zeros(n, np.int8)
    problem[np.bincount(row_of[bad_value], minlength=n) > 0] = _NONFINITE
    problem[np.bincount(row_of[nulls], minlength=n) > 0] = _NON_NUMERIC  # a null element is no number
    return _compact(values, lengths, problem, row_of)


def _compact(values: np.ndarray, lengths: np.ndarray, problem: np.ndarray, row_of: np.ndarray) -> EmbeddingRows:
    """Rows with a problem keep no elements (length 0 in the offsets)."""
    if not problem.any():
        return EmbeddingRows(values, _offsets(lengths), problem)
    kept = np.where(problem == 0, lengths, 0)
    return EmbeddingRows(values[problem[row_of] == 0], _offsets(kept), problem)


def _parse_python(rows: list[Any]) -> EmbeddingRows:
    parts: list[np.ndarray] = []
    problem = np.zeros(len(rows), np.int8)
    lengths = np.zeros(len(rows), np.int64)
    for i, v in enumerate(rows):
        if isinstance(v, str | bytes | bytearray):
            try:
                v = json.loads(v)  # accepts NaN and Infinity, rejected below as non-finite
            except ValueError:
                problem[i] = _NOT_JSON
                continue
        if not isinstance(v, list | tuple | np.ndarray):
            problem[i] = _NOT_A_LIST
            continue
        try:
            x = np.asarray(v)
        except ValueError:  # ragged nesting
            problem[i] = _NON_NUMERIC
            continue
        if len(v) and (x.ndim != 1 or x.dtype.kind not in "iuf"):  # text, null, bool, a nested list
            problem[i] = _NON_NUMERIC
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.astype(np.float32)
        if not np.isfinite(x).all():
            problem[i] = _NONFINITE
            continue
        parts.append(x)
        lengths[i] = len(x)
    values = np.concatenate(parts) if parts else np.empty(0, np.float32)
    return EmbeddingRows(values.astype(np.float32, copy=False), _offsets(lengths), problem)


def sample_positions(rows: int, cap: int, seed: int) -> np.ndarray:
    """The positions embedding.subsample keeps of `rows` rows: all, or `cap` of them."""
    if rows <= cap:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


@dataclass(frozen=True, eq=False)
class EmbeddingPart:
    """What one read of rows (a window, or one of its segments) brings: the sampled rows,
    and counts over every row it read."""

    picked: EmbeddingRows
    read: int
    dimensions: dict[int, int]
    problems: dict[str, int]


def part(rows: EmbeddingRows, picks: np.ndarray) -> EmbeddingPart:
    return EmbeddingPart(rows.take(picks), len(rows), rows.dimensions(), rows.problems())


@dataclass(frozen=True, eq=False)
class EmbeddingSample:
    """A window's embedding sample: its usable sampled rows and why the others were left out."""

    matrix: np.ndarray  # float32 rows x dimension; (0, 0) when no row is usable
    dimension: int | None
    read: int  # rows read (all of the window's, or its hash pre-sample)
    rejected: dict[str, int]  # of the rows read, by reason (REASONS, zero included)

    @property
    def usable(self) -> int:
        return self.read - sum(self.rejected.values())


def window_dimension(dimensions: dict[int, int], configured: int | None) -> int | None:
    if configured is not None:
        return configured
    seen = [(n, -d) for d, n in dimensions.items() if d > 0]
    return -max(seen)[1] if seen else None


def combine(parts: list[EmbeddingPart], dimension: int | None = None) -> EmbeddingSample:
    """The window's sample from its parts (in time order), at the window's dimension."""
    dims: Counter[int] = Counter()
    problems: Counter[str] = Counter()
    for p in parts:
        dims.update(p.dimensions)
        problems.update(p.problems)
    dim = window_dimension(dict(dims), dimension)
    rejected = {name: problems.get(name, 0) for name in PROBLEMS}
    rejected["wrong_dimension"] = sum(n for d, n in dims.items() if d != dim)
    mats = [m for m in (p.picked.matrix(dim) for p in parts) if len(m)] if dim else []
    matrix = np.vstack(mats) if mats else np.empty((0, 0), np.float32)
    return EmbeddingSample(matrix, dim, sum(p.read for p in parts), rejected)


def to_sample(column: Any, cap: int, seed: int, dimension: int | None = None) -> EmbeddingSample:
    """One read: the column's rows parsed, `cap` of them sampled, the usable ones kept."""
    rows = parse_rows(column)
    return combine([part(rows, sample_positions(len(rows), cap, seed))], dimension)


def describe_rejected(rejected: dict[str, int], dimension: int | None, column: str) -> str | None:
    """The run note on a window's malformed embeddings, or None when there was none."""
    bad = {r: n for r, n in rejected.items() if n}
    if not bad:
        return None
    why = ", ".join(
        f"{n:,} {r}" + (f" (not {dimension} long)" if r == "wrong_dimension" and dimension else "")
        for r, n in bad.items()
    )
    return (
        f"embedding drift: {sum(bad.values()):,} malformed embeddings in column {column!r} left out ({why}); "
        "embedding drift runs on the other rows, feature drift on all of them"
    )

"""Feedback figures: count, coverage, mean rating (1-5) and helpful ratio per segment.
The feedback table is joined to the window's requests on request_id in SQL; feedback
belongs to the window of its request, whenever it was given. Rows given in the window
for unknown request ids are counted apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aimon.errors import ContractError
from aimon.records import MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality.figures import Family, Figure
from aimon.tasks.quality.reads import fetch_frame, segment_columns, segments
from aimon.warehouse import _split


def feedback_table(ctx: AnalysisContext, name: str) -> sa.TableClause:
    cols = ctx.warehouse.table_columns(name)
    if "request_id" not in cols:
        raise ContractError(f"feedback table {name!r} has no request_id column (it has: {', '.join(cols)})")
    schema, table = _split(name)
    wanted = [c for c in ("request_id", "timestamp", "rating", "helpful") if c in cols]
    return sa.table(table, *[sa.column(c) for c in wanted], schema=schema)


def feedback_sums(
    ctx: AnalysisContext, fb: sa.TableClause, seg: list[sa.ColumnElement[Any]] | None = None
) -> pd.DataFrame:
    """Per segment of the window's requests (default: the quality segments): requests,
    requests with feedback, and feedback sums; feedback is first summed per request, so
    a request logged twice cannot double its feedback."""
    ix = ctx.interactions
    rid = sa.cast(fb.c.request_id, sa.String)
    rating = sa.cast(fb.c.rating, sa.Float) if "rating" in fb.c else None
    helpful = fb.c.helpful if "helpful" in fb.c else None
    valid_rating = sa.and_(rating >= 1, rating <= 5) if rating is not None else sa.false()
    per_req_cols: list[Any] = [rid.label("rid"), sa.func.count().label("n_fb")]
    if rating is not None:
        per_req_cols += [
            sa.func.sum(sa.case((valid_rating, rating), else_=None)).label("rating_sum"),
            sa.func.sum(sa.case((valid_rating, 1), else_=0)).label("n_rating"),
            sa.func.sum(sa.case((valid_rating, rating * rating), else_=None)).label("rating_sq"),
            sa.func.sum(sa.case((sa.and_(rating.is_not(None), sa.not_(valid_rating)), 1), else_=0)).label("n_bad"),
        ]
    if helpful is not None:
        h = sa.cast(helpful, sa.Integer)
        per_req_cols += [
            sa.func.sum(sa.case((h == 1, 1), else_=0)).label("n_helpful"),
            sa.func.sum(sa.case((helpful.is_not(None), 1), else_=0)).label("n_helpful_known"),
        ]
    per_req_q = sa.select(*per_req_cols).select_from(fb).where(fb.c.request_id.is_not(None))
    if "timestamp" in fb.c:
        # Feedback follows its request: skip the table's older history (an hour of
        # slack for clocks that disagree).
        since = sa.bindparam("fb_since", ctx.window.start - dt.timedelta(hours=1), type_=sa.DateTime)
        per_req_q = per_req_q.where(fb.c.timestamp >= since)
    per_req = per_req_q.group_by(rid).subquery("per_request")
    req_id = sa.cast(ix.req("request_id"), sa.String)
    seg = segment_columns(ctx) if seg is None else seg
    sums = ["n_fb", "rating_sum", "rating_sq", "n_rating", "n_bad", "n_helpful", "n_helpful_known"]
    stmt = (
        sa.select(
            *seg,
            sa.func.count(ix.req("request_id")).label("n_requests"),
            sa.func.count(per_req.c.rid).label("n_with_fb"),
            *[sa.func.sum(per_req.c[c]).label(c) for c in sums if c in per_req.c],
        )
        .select_from(ix.table.outerjoin(per_req, req_id == per_req.c.rid))
        .where(ix.in_window(), valid_rows(ix))
        .group_by(*[sa.literal_column(str(c.key)) for c in seg])
    )
    df = fetch_frame(ctx, stmt)
    for c in ["n_requests", "n_with_fb", *sums]:
        df[c] = pd.to_numeric(df[c].astype(object).where(df[c].notna(), 0)).astype(float) if c in df else 0.0
    return df


def feedback_unmatched(ctx: AnalysisContext, fb: sa.TableClause) -> int | None:
    """Feedback given in this window for a request id no interaction has (or none)."""
    if "timestamp" not in fb.c:
        return None
    ix = ctx.interactions
    known = (
        sa.select(sa.literal(1))
        .select_from(ix.table)
        .where(sa.cast(ix.req("request_id"), sa.String) == sa.cast(fb.c.request_id, sa.String))
    )
    in_window = (
        fb.c.timestamp >= sa.bindparam("window_start", type_=sa.DateTime),
        fb.c.timestamp < sa.bindparam("window_end", type_=sa.DateTime),
    )
    # Two counts, not one `IS NULL OR NOT EXISTS`: under an OR, PostgreSQL runs the
    # subquery once per feedback row (a scan of the interactions each: minutes on a
    # 1M-row day); a bare NOT EXISTS is planned as one hash anti-join.
    no_id = sa.select(sa.func.count()).select_from(fb).where(*in_window, fb.c.request_id.is_(None))
    unknown = (
        sa.select(sa.func.count()).select_from(fb).where(*in_window, fb.c.request_id.is_not(None), ~known.exists())
    )
    return int(ctx.warehouse.scalar(no_id, ctx.params)) + int(ctx.warehouse.scalar(unknown, ctx.params))


def feedback_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    name = ctx.cfg.warehouse.feedback_table
    if not name:
        fam.notes.append("feedback skipped: no warehouse.feedback_table configured")
        return fam
    if not ctx.interactions.has("request_id"):
        fam.notes.append("feedback skipped: the interactions table has no request_id column to join on")
        return fam
    try:
        fb = feedback_table(ctx, name)
    except ContractError as err:
        fam.notes.append(f"feedback skipped: {err} (or unset warehouse.feedback_table)")
        return fam
    df = feedback_sums(ctx, fb)
    bad = int(df["n_bad"].sum())
    unmatched = feedback_unmatched(ctx, fb)
    fam.extra.append(MetricRecord.of("feedback_invalid_rows", bad, reason="rating_out_of_range"))
    if unmatched is not None:
        fam.extra.append(MetricRecord.of("feedback_unmatched_rows", unmatched))
    for labels, mask in segments(df):
        part = df[mask]
        requests = int(part["n_requests"].sum())
        count = int(part["n_fb"].sum())
        fam.figures.append(Figure.of("feedback_count", count, count, **labels))
        if requests:
            fam.figures.append(Figure.of("feedback_coverage", part["n_with_fb"].sum() / requests, requests, **labels))
        n_rating = int(part["n_rating"].sum())
        if n_rating:
            fam.figures.append(
                Figure.of("feedback_rating_mean", part["rating_sum"].sum() / n_rating, n_rating, **labels)
            )
        n_known = int(part["n_helpful_known"].sum())
        if n_known:
            fam.figures.append(
                Figure.of("feedback_helpful_ratio", part["n_helpful"].sum() / n_known, n_known, **labels)
            )
    total = int(df["n_fb"].sum())
    if not total:
        fam.notes.append("feedback: none for this window's requests yet")
    if bad or unmatched:
        parts = []
        if bad:
            parts.append(f"{bad:,} ratings outside 1-5 (left out of the mean)")
        if unmatched:
            parts.append(f"{unmatched:,} feedback rows given in this window for unknown request ids")
        fam.notes.append("feedback: " + "; ".join(parts))
    fam.details = {"feedback_rows": total, "invalid_ratings": bad, "unmatched": unmatched}
    return fam

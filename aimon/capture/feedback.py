"""`feedback_router()`: a FastAPI router with ``POST /feedback``, writing the feedback
table the quality analyzer reads (warehouse.feedback_table).

The body is validated with pydantic (422 with the field named on bad input): a
request_id, an optional user_id, a rating 1-5 and/or helpful, an optional comment
(masked like prompts). One row per (request_id, user_id): a second rating from the
same user replaces the first. Feedback for a request id the interactions table does
not hold is kept: the quality analyzer counts it as `feedback_unmatched_rows`.
Needs the `capture` extra (FastAPI).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from pydantic import BaseModel, Field, model_validator

from aimon.capture.masking import Masker

UTC = dt.UTC


class FeedbackIn(BaseModel):
    """The body of POST /feedback."""

    model_config = {"extra": "forbid"}

    request_id: str = Field(min_length=1, max_length=200)
    user_id: str | None = Field(default=None, max_length=200)
    rating: int | None = Field(default=None, ge=1, le=5)
    helpful: bool | None = None
    comment: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _something(self) -> FeedbackIn:
        if self.rating is None and self.helpful is None and not self.comment:
            raise ValueError("give a rating (1-5), helpful (true/false) or a comment")
        return self


class FeedbackStore:
    """The feedback table behind the router: created when missing, written with a
    delete-then-insert per (request_id, user_id) in one transaction."""

    def __init__(self, url: str, table: str = "feedback", *, create: bool = True):
        import sqlalchemy as sa  # noqa: PLC0415  lazy, as in the sinks

        self.sa = sa
        self.table = table
        # NullPool: no connection stays open between writes (an embedded DuckDB file's lock).
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._lock = threading.Lock()  # one writer at a time (an embedded DuckDB file)
        if create:
            with self.engine.begin() as c:
                c.exec_driver_sql(
                    f'CREATE TABLE IF NOT EXISTS "{table}" (request_id VARCHAR NOT NULL, user_id VARCHAR, '
                    '"timestamp" TIMESTAMP NOT NULL, rating INTEGER, helpful BOOLEAN, comment VARCHAR)'
                )
        with self.engine.connect() as c:  # the columns, portably (duckdb-engine's inspector reads pg_catalog)
            names = set(c.exec_driver_sql(f'SELECT * FROM "{table}" WHERE 1 = 0').keys())
        # A feedback table of the contract's minimum (no user_id): one row per request_id.
        self.columns = [c for c in ("request_id", "user_id", "timestamp", "rating", "helpful", "comment") if c in names]

    def put(self, row: dict[str, Any]) -> None:
        if self.engine.url.get_backend_name() == "duckdb":
            self._put_duckdb(row)
            return
        sa = self.sa
        per_user = "user_id" in self.columns
        same_user = (
            "" if not per_user else (" AND user_id IS NULL" if row["user_id"] is None else " AND user_id = :user_id")
        )
        cols = ", ".join(f'"{c}"' for c in self.columns)
        values = ", ".join(f":{c}" for c in self.columns)
        with self._lock, self.engine.begin() as c:
            c.execute(
                sa.text(f'DELETE FROM "{self.table}" WHERE request_id = :request_id{same_user}'),
                {"request_id": row["request_id"], "user_id": row["user_id"]},
            )
            c.execute(sa.text(f'INSERT INTO "{self.table}" ({cols}) VALUES ({values})'), row)

    def _put_duckdb(self, row: dict[str, Any]) -> None:
        """An embedded DuckDB file: opened for the write only, as the warehouse sink opens
        it (one configuration for every connection of the process, and the monitoring
        runs need the file's lock)."""
        from aimon.capture.sinks import duckdb_connection  # noqa: PLC0415

        per_user = "user_id" in self.columns
        same_user = (
            "" if not per_user else (" AND user_id IS NULL" if row["user_id"] is None else " AND user_id = $user_id")
        )
        cols = ", ".join(f'"{c}"' for c in self.columns)
        values = ", ".join(f"${c}" for c in self.columns)
        delete_params = {
            "request_id": row["request_id"],
            **({"user_id": row["user_id"]} if per_user and row["user_id"] is not None else {}),
        }
        with self._lock, duckdb_connection(str(self.engine.url)) as con:
            con.execute("BEGIN")
            con.execute(f'DELETE FROM "{self.table}" WHERE request_id = $request_id{same_user}', delete_params)
            con.execute(f'INSERT INTO "{self.table}" ({cols}) VALUES ({values})', {c: row[c] for c in self.columns})
            con.execute("COMMIT")

    def close(self) -> None:
        self.engine.dispose()


def feedback_router(
    store: FeedbackStore | str,
    *,
    table: str = "feedback",
    path: str = "/feedback",
    masker: Masker | None = None,
) -> Any:
    """The router: `app.include_router(feedback_router("duckdb:///warehouse.duckdb"))`.
    `store`: a FeedbackStore or a SQLAlchemy URL (the table `table`, created when
    missing)."""
    from fastapi import APIRouter  # noqa: PLC0415  the `capture` extra

    fb = FeedbackStore(store, table) if isinstance(store, str) else store
    mask = masker or Masker("masked")

    router = APIRouter()

    # A plain def: FastAPI runs it in its thread pool, so the database write does not
    # block the event loop.
    @router.post(path, status_code=201)
    def post_feedback(body: FeedbackIn) -> dict[str, Any]:
        row = {
            "request_id": body.request_id,
            "user_id": mask.user_id(body.user_id),
            "timestamp": dt.datetime.now(UTC).replace(tzinfo=None),
            "rating": body.rating,
            "helpful": body.helpful,
            "comment": mask.text(body.comment),
        }
        fb.put(row)
        return {"request_id": body.request_id, "stored": True}

    router.feedback_store = fb  # type: ignore[attr-defined]
    return router

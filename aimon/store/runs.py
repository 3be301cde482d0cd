"""Window claims: at most one run of a window at a time, across threads, processes and hosts.

A run claims its window before it starts by inserting one row, keyed on
(window_start, granularity), into the claims table (``<runs_table>_claims``). The
primary key gives insert-or-fail semantics on every engine: PostgreSQL blocks the
second insert until the first commits and then rejects it, SQLite serialises writers,
DuckDB rejects the duplicate key (or reports a write-write conflict, which is the same
answer). The loser reads who holds the claim and skips.

A claim carries an expiry. A run that was killed never releases its claim; once the
claim has expired, the next run takes it over with a conditional UPDATE (``WHERE
run_id = <the stale holder> AND expires_at < now``), so of two runs that both saw the
stale claim exactly one wins; the killed run is marked ``failed`` ("abandoned").

Finishing a run (``Store.finish_run``) deletes its claim in the same transaction that
records its status, so a late duplicate that claims afterwards sees the finished run
and, in ``redo="missing"`` mode, skips the window instead of running it twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from aimon.errors import StoreError, WindowClaimed
from aimon.windows import Window

RedoMode = Literal["missing", "failed", "all"]
REDO_MODES: tuple[RedoMode, ...] = ("missing", "failed", "all")
FINISHED = ("success", "degraded", "failed")  # a "provisional" run (an open window) never is
_ATTEMPTS = 8  # claim races resolve in one or two rounds; more means something is wrong


def check_redo(redo: str) -> RedoMode:
    if redo not in REDO_MODES:
        raise ValueError(f"redo mode {redo!r}: use one of {', '.join(REDO_MODES)}")
    return redo  # type: ignore[return-value]


def needs_run(latest_status: str | None, redo: RedoMode) -> bool:
    """Does a window whose latest finished run ended `latest_status` (None: never
    finished) need a run in this redo mode? `failed` redoes degraded runs too: a
    degraded window is missing some analyzer's figures."""
    if redo == "all":
        return True
    if redo == "failed":
        return latest_status != "success"
    return latest_status is None


def _key(claims: sa.Table, window: Window) -> sa.ColumnElement[bool]:
    return sa.and_(claims.c.window_start == window.start, claims.c.granularity == window.granularity)


def _holder(conn: sa.Connection, claims: sa.Table, window: Window) -> dict[str, Any] | None:
    row = conn.execute(sa.select(claims).where(_key(claims, window))).mappings().first()
    return dict(row) if row else None


def acquire(
    engine: sa.Engine,
    claims: sa.Table,
    runs: sa.Table,
    window: Window,
    run_id: str,
    flow_run_id: str | None,
    *,
    ttl_seconds: float,
    now: dt.datetime,
) -> None:
    """Claim `window` for `run_id`, or raise WindowClaimed naming the holder."""
    row = {
        "window_start": window.start,
        "granularity": window.granularity,
        "run_id": run_id,
        "flow_run_id": flow_run_id,
        "claimed_at": now,
        "expires_at": now + dt.timedelta(seconds=ttl_seconds),
    }
    last_err: Exception | None = None
    for _ in range(_ATTEMPTS):
        try:
            with engine.begin() as conn:
                conn.execute(claims.insert().values(**row))
            return
        except sa.exc.DBAPIError as err:
            # Duplicate key, or (DuckDB) a write-write conflict with a concurrent
            # claimer: either way someone else may hold it. Read who.
            last_err = err
        with engine.connect() as conn:
            holder = _holder(conn, claims, window)
        if holder is None:
            continue  # released between our insert and the read: try again
        if holder["expires_at"] > now:
            raise WindowClaimed(
                f"{window} is being run by run {holder['run_id']}"
                + (f" (flow run {holder['flow_run_id']})" if holder["flow_run_id"] else "")
                + f" since {holder['claimed_at']:%Y-%m-%d %H:%M:%S} UTC; skipped. Its claim expires at "
                f"{holder['expires_at']:%Y-%m-%d %H:%M:%S} UTC (orchestration.claim_expires_after_seconds)"
            )
        # Stale: the holder was killed. Take the claim over only if it is still the
        # same stale claim; of two runs racing here, one UPDATE matches, the other none.
        try:
            with engine.begin() as conn:
                taken = conn.execute(
                    claims.update()
                    .where(_key(claims, window), claims.c.run_id == holder["run_id"], claims.c.expires_at <= now)
                    .values(**{k: v for k, v in row.items() if k not in ("window_start", "granularity")})
                    .returning(claims.c.run_id)
                ).all()
                if taken:
                    conn.execute(
                        runs.update()
                        .where(runs.c.run_id == holder["run_id"], runs.c.status == "running")
                        .values(
                            status="failed",
                            finished_at=now,
                            error=f"abandoned: its claim expired at {holder['expires_at']:%Y-%m-%d %H:%M:%S} UTC "
                            f"and run {run_id} took the window over (was the process killed?)",
                        )
                    )
                    return
        except sa.exc.DBAPIError as err:
            last_err = err  # a concurrent takeover won (DuckDB reports a conflict)
    raise StoreError(f"could not claim {window} after {_ATTEMPTS} attempts: {last_err}")


def release(conn: sa.Connection, claims: sa.Table, run_id: str) -> None:
    conn.execute(claims.delete().where(claims.c.run_id == run_id))


def latest_finished(conn: sa.Connection, runs: sa.Table, window: Window) -> str | None:
    q = (
        sa.select(runs.c.status)
        .where(
            runs.c.window_start == window.start,
            runs.c.granularity == window.granularity,
            runs.c.status.in_(FINISHED),
        )
        .order_by(runs.c.started_at.desc())
        .limit(1)
    )
    return conn.execute(q).scalar()


@dataclass(frozen=True)
class WindowState:
    """What the runs table says about one window: for planning a backfill or catch-up."""

    window: Window
    latest_status: str | None  # of the latest finished run; None: never finished
    latest_run_id: str | None
    latest_error: str | None
    claimed_by: str | None  # run id holding a live claim (running now, elsewhere)


def window_states(
    engine: sa.Engine, claims: sa.Table, runs: sa.Table, windows: list[Window], now: dt.datetime
) -> list[WindowState]:
    if not windows:
        return []
    g = windows[0].granularity
    lo, hi = min(w.start for w in windows), max(w.start for w in windows)
    with engine.connect() as conn:
        finished = conn.execute(
            sa.select(runs.c.window_start, runs.c.status, runs.c.run_id, runs.c.error)
            .where(
                runs.c.granularity == g,
                runs.c.window_start >= lo,
                runs.c.window_start <= hi,
                runs.c.status.in_(FINISHED),
            )
            .order_by(runs.c.started_at)
        ).all()
        live = conn.execute(
            sa.select(claims.c.window_start, claims.c.run_id).where(
                claims.c.granularity == g,
                claims.c.window_start >= lo,
                claims.c.window_start <= hi,
                claims.c.expires_at > now,
            )
        ).all()
    latest = {r.window_start: r for r in finished}  # ordered by started_at: the last wins
    held = {r.window_start: r.run_id for r in live}
    out = []
    for w in windows:
        r = latest.get(w.start)
        out.append(
            WindowState(
                w,
                r.status if r else None,
                r.run_id if r else None,
                r.error if r else None,
                held.get(w.start),
            )
        )
    return out

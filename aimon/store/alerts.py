"""Alert state, per-window alert events, silences and the notification outbox.

Four tables on the store's engine (same database as the metrics table):

- alerts (state): one row per (rule, labels, granularity): pending, firing, resolved,
  and what the route was last told (so a rerun never re-sends).
- alert events: what each evaluated window found, replaced when the window is
  re-evaluated: the queryable history of alerts, sent or not (backfills record here).
- silences: matchers muting alerts until a time.
- outbox: every notification is written here, in the same transaction as the state
  change that caused it, before any attempt to send it; marked sent after. A send that
  fails stays pending and is retried on later runs until it goes or expires.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import redact
from aimon.errors import StoreError
from aimon.store.schema import create_tables, schema, store_engine, utcnow, within

OUTBOX_STATUSES = ("pending", "sent", "expired")


def _dt(v: Any) -> dt.datetime | None:
    if v is None or isinstance(v, dt.datetime):
        return v
    return dt.datetime.fromisoformat(str(v))


@dataclass(frozen=True)
class AlertState:
    alert_id: str
    rule: str
    granularity: str
    labels: str  # JSON, sorted keys
    metric: str
    severity: str
    route: str
    status: str  # pending | firing | folded | resolved | inactive
    value: float | None
    bound: float | None
    active_since: dt.datetime | None  # start of the first window of the breach streak
    last_window_start: dt.datetime
    fired_window_start: dt.datetime | None = None
    resolved_window_start: dt.datetime | None = None
    notified_status: str | None = None  # firing | resolved: what the route was last told
    last_notified_window_start: dt.datetime | None = None
    run_id: str = ""
    # Firing: consecutive judged windows back within bounds so far (resolve_after);
    # resolved: how many it took. 0 while it breaches.
    ok_windows: int = 0
    folded_into: str | None = None  # status folded: the alert id of the alert it is folded into

    @property
    def labels_dict(self) -> dict[str, str]:
        return dict(json.loads(self.labels))


@dataclass(frozen=True)
class AlertEvent:
    window_start: dt.datetime
    window_end: dt.datetime
    granularity: str
    rule: str
    labels: str
    metric: str
    severity: str
    route: str
    status: str  # pending | firing | recovering (firing, back within bounds) | folded | resolved
    value: float | None
    bound: float | None
    active_since: dt.datetime | None
    silenced_by: str | None
    run_id: str
    folded_into: str | None = None  # status folded: the alert id it is folded into
    note: str | None = None  # e.g. "recovering: 1 of 2 windows back within bounds"


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: tuple[str, ...]
    starts_at: dt.datetime
    ends_at: dt.datetime
    comment: str
    created_by: str
    created_at: dt.datetime
    removed_at: dt.datetime | None = None

    def active(self, now: dt.datetime) -> bool:
        return self.removed_at is None and self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class OutboxEntry:
    outbox_id: str
    dedup_key: str
    created_at: dt.datetime
    run_id: str
    route: str
    channel: str
    granularity: str
    window_start: dt.datetime
    window_end: dt.datetime
    payload: dict[str, Any] = field(hash=False)
    status: str = "pending"
    attempts: int = 0
    last_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    last_error: str | None = None
    expires_at: dt.datetime | None = None


class AlertStore:
    def __init__(self, cfg: Config):
        self.url = cfg.store_url
        self.engine = store_engine(cfg)
        tables = schema(cfg)
        self.state, self.events = tables.alert_state, tables.alert_events
        self.silences, self.outbox = tables.silences, tables.outbox
        self._columns: dict[str, set[str]] = {}

    @property
    def where(self) -> str:
        return f"tables {self.state.name}, {self.events.name}, {self.outbox.name} at {redact(self.url)}"

    def ensure(self) -> None:
        tables = (self.state, self.events, self.silences, self.outbox)
        create_tables(self.engine, tables, f"the alert tables at {redact(self.url)}")
        for t in (self.state, self.events):
            self._add_missing_columns(t)

    def _add_missing_columns(self, table: sa.Table) -> None:
        """A store created before a column existed gets it (nullable, so old rows read
        as its default): resolve_after's and folding's columns came later."""
        have = self._present(table)
        for c in [c for c in table.columns if c.name not in have]:
            try:
                with self.engine.begin() as conn:
                    prep = conn.dialect.identifier_preparer
                    kind = c.type.compile(dialect=conn.dialect)
                    conn.execute(
                        sa.text(f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {prep.quote(c.name)} {kind}")
                    )
                self._columns.pop(table.name, None)
            except sa.exc.SQLAlchemyError as err:
                if c.name not in self._present(table, fresh=True):  # not a concurrent run that added it first
                    raise StoreError(
                        f"cannot add column {c.name} to table {table.name} at {redact(self.url)}: "
                        f"{getattr(err, 'orig', None) or err}"
                    ) from None

    def _present(self, table: sa.Table, *, fresh: bool = False) -> set[str]:
        """The table's columns (asked once per AlertStore: columns are only ever added)."""
        if fresh or table.name not in self._columns:
            # A zero-row select, not the inspector: duckdb-engine's get_columns needs pg_catalog.
            with self.engine.connect() as conn:
                q: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(table).limit(0)
                self._columns[table.name] = set(conn.execute(q).keys())
        return self._columns[table.name]

    def _select(self, table: sa.Table) -> sa.Select[Any]:
        """Every declared column the table has: a store written by an older version
        (not yet ensured, or opened read-only) lacks the later ones, read as defaults."""
        have = self._present(table)
        return sa.select(*[c for c in table.columns if c.name in have])

    def _has(self, table: sa.Table) -> bool:
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table(table.name)

    # -- state ----------------------------------------------------------------------

    def states(self, alert_ids: Iterable[str] | None = None) -> dict[str, AlertState]:
        if not self._has(self.state):
            return {}
        q = self._select(self.state)
        if alert_ids is not None:
            ids = list(alert_ids)
            if not ids:
                return {}
            q = q.where(self.state.c.alert_id.in_(ids))
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        out = {}
        for r in rows:
            d = {k: r[k] for k in AlertState.__dataclass_fields__ if k in r}
            for k in (
                "active_since",
                "last_window_start",
                "fired_window_start",
                "resolved_window_start",
                "last_notified_window_start",
            ):
                d[k] = _dt(d[k])
            d["ok_windows"] = int(d.get("ok_windows") or 0)
            out[r["alert_id"]] = AlertState(**d)
        return out

    def commit_evaluation(
        self,
        *,
        window_start: dt.datetime,
        granularity: str,
        rules: Sequence[str],
        states: Sequence[AlertState],
        events: Sequence[AlertEvent],
        outbox: Sequence[OutboxEntry],
    ) -> int:
        """In one transaction: new alert states, the window's events for these rules
        (replacing a previous evaluation of the window), and the notifications to send.
        Returns how many outbox entries were new (a dedup key seen before is skipped)."""
        now = utcnow()
        added = 0
        with self.engine.begin() as conn:
            for s in states:
                conn.execute(self.state.delete().where(self.state.c.alert_id == s.alert_id))
                conn.execute(self.state.insert().values(**s.__dict__, updated_at=now))
            if rules:
                conn.execute(
                    self.events.delete().where(
                        self.events.c.window_start == window_start,
                        self.events.c.granularity == granularity,
                        self.events.c.rule.in_(list(rules)),
                    )
                )
            if events:
                conn.execute(self.events.insert(), [{**e.__dict__, "evaluated_at": now} for e in events])
            for o in outbox:
                seen = conn.execute(
                    sa.select(sa.func.count()).select_from(self.outbox).where(self.outbox.c.dedup_key == o.dedup_key)
                ).scalar_one()
                if seen:
                    continue
                row = {**o.__dict__, "payload": json.dumps(o.payload, sort_keys=True, default=str)}
                conn.execute(self.outbox.insert().values(**row))
                added += 1
        return added

    # -- events ---------------------------------------------------------------------

    def events_between(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None, granularity: str | None = None
    ) -> list[AlertEvent]:
        if not self._has(self.events):
            return []
        e = self.events
        q = within(self._select(e).order_by(e.c.window_start, e.c.rule, e.c.labels), e.c.window_start, start, end)
        if granularity is not None:
            q = q.where(e.c.granularity == granularity)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        fields = AlertEvent.__dataclass_fields__
        out = []
        for r in rows:
            d = {k: r[k] for k in fields if k in r}
            for k in ("window_start", "window_end", "active_since"):
                d[k] = _dt(d[k])
            out.append(AlertEvent(**d))
        return out

    # -- silences -------------------------------------------------------------------

    def add_silence(self, s: Silence) -> None:
        self.ensure()
        with self.engine.begin() as conn:
            row = {**s.__dict__, "matchers": json.dumps(list(s.matchers))}
            conn.execute(self.silences.insert().values(**row))

    def remove_silence(self, silence_id: str, now: dt.datetime | None = None) -> bool:
        if not self._has(self.silences):
            return False
        with self.engine.begin() as conn:
            res = conn.execute(
                self.silences.update()
                .where(self.silences.c.silence_id == silence_id, self.silences.c.removed_at.is_(None))
                .values(removed_at=now or utcnow())
            )
        return bool(res.rowcount)

    def silences_all(self) -> list[Silence]:
        if not self._has(self.silences):
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.silences).order_by(self.silences.c.created_at)).mappings().all()
        return [
            Silence(
                r["silence_id"],
                tuple(json.loads(r["matchers"])),
                _dt(r["starts_at"]),  # type: ignore[arg-type]
                _dt(r["ends_at"]),  # type: ignore[arg-type]
                r["comment"],
                r["created_by"],
                _dt(r["created_at"]),  # type: ignore[arg-type]
                _dt(r["removed_at"]),
            )
            for r in rows
        ]

    def active_silences(self, now: dt.datetime) -> list[Silence]:
        return [s for s in self.silences_all() if s.active(now)]

    # -- outbox ---------------------------------------------------------------------

    def _entry(self, r: Any) -> OutboxEntry:
        d = {k: r[k] for k in OutboxEntry.__dataclass_fields__}
        d["payload"] = json.loads(d["payload"])
        for k in ("created_at", "window_start", "window_end", "last_attempt_at", "sent_at", "expires_at"):
            d[k] = _dt(d[k])
        return OutboxEntry(**d)

    def outbox_entries(self, status: str | None = None, limit: int | None = None) -> list[OutboxEntry]:
        if not self._has(self.outbox):
            return []
        o = self.outbox
        q = sa.select(o).order_by(o.c.created_at.desc(), o.c.route, o.c.channel)
        if status is not None:
            q = q.where(o.c.status == status)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [self._entry(r) for r in conn.execute(q).mappings().all()]

    def due(self) -> list[OutboxEntry]:
        """Pending notifications, oldest first."""
        return sorted(self.outbox_entries("pending"), key=lambda e: (e.created_at, e.window_start, e.outbox_id))

    def claim(self, outbox_id: str, owner: str, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Take the entry for sending; False if it is no longer pending or another run holds it."""
        o = self.outbox
        with self.engine.begin() as conn:
            res = conn.execute(
                o.update()
                .where(
                    o.c.outbox_id == outbox_id,
                    o.c.status == "pending",
                    sa.or_(o.c.claimed_until.is_(None), o.c.claimed_until < now, o.c.claimed_by == owner),
                )
                .values(claimed_by=owner, claimed_until=now + lease)
            )
        return bool(res.rowcount)

    def mark(
        self,
        outbox_id: str,
        status: str,
        *,
        attempts: int,
        error: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        assert status in OUTBOX_STATUSES
        now = now or utcnow()
        values: dict[str, Any] = {
            "status": status,
            "attempts": attempts,
            "last_attempt_at": now,
            "last_error": error,
            "claimed_by": None,
            "claimed_until": None,
        }
        if status == "sent":
            values["sent_at"] = now
        with self.engine.begin() as conn:
            # Only a pending entry changes: a concurrent run that already sent it wins.
            conn.execute(
                self.outbox.update()
                .where(self.outbox.c.outbox_id == outbox_id, self.outbox.c.status == "pending")
                .values(**values)
            )

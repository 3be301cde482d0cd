"""Run the monitor window by window over a simulated history and count what it tells.

In-process and without Prefect, the flow's order (aimon.flows.monitor) with its plain
functions: begin_run, open_window, the contract check, every analyzer of
aimon.tasks.registry.ANALYZERS through run_analyzer (a failing one degrades the run, as
in the flow), publish, then alert_window with send=True and, for each route, a
recording channel in place of a real one. Whatever the current code and the config
under test say is what runs: the config is the one given (the default config unless
told otherwise) with only the data's own settings replaced (warehouse and its column
names, store, pricing of the data's models, the data's experiment and drift features,
a recording channel per route).

The normal history runs once per generator; each incident gets its own copy: the store
as the normal run left it the day before the incident, and a warehouse holding the
normal days up to it, then the incident's days, then normal days again.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from .generators import GENERATORS, INCIDENT_DAYS, INCIDENT_KINDS, START, Incident, Shape, generate_day, slow_state

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "configs" / "monitoring.yaml"
AFTER_DAYS = 5  # normal days run after an incident, to see it resolve
SIM_CHANNEL = "sim-{route}"


class Recorder:
    """A channel that keeps what it is sent."""

    def __init__(self, name: str):
        self.name = name
        self.secrets: tuple[str, ...] = ()
        self.payloads: list[dict[str, Any]] = []

    def send(self, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)


DEFAULT_ROWS = {"saas": 6000, "enterprise": 4000, "consumer": 5000}  # rows on day 1


def config_data(shape: Shape, config: Path, warehouse: Path) -> dict[str, Any]:
    """The config under test, with the simulated data's own settings. The store is the
    warehouse's own DuckDB file (the default setup)."""
    data = yaml.safe_load(config.read_text()) or {}
    data["warehouse"] = {
        **(data.get("warehouse") or {}),
        "url": f"duckdb:///{warehouse}",
        "interactions_table": "interactions",
        "feedback_table": shape.feedback_table,
        "columns": dict(shape.columns),
    }
    data["store"] = {**(data.get("store") or {}), "url": None}
    data["pricing"] = [
        {"model": m, "input_per_1m": i, "output_per_1m": o, "effective_from": "2024-01-01"}
        for m, (i, o) in shape.prices.items()
    ]
    data["budgets"] = []  # a team's own numbers, not something to calibrate
    template = (data.get("experiments") or [{}])[0]
    a, b = shape.variants
    data["experiments"] = [
        {
            **template,
            "name": shape.experiment,
            "start": None,
            "variants": [a, b],
            "control": a,
            "split": {a: 0.5, b: 0.5},
            "metrics": template.get("metrics")
            or [{"name": "output_tokens", "type": "continuous", "column": "output_tokens", "good": "lower"}],
        }
    ]
    drift = dict(data.get("drift") or {})
    drift["features"] = [{"name": f, "type": "categorical"} for f in shape.features]
    data["drift"] = drift
    alerts = dict(data.get("alerts") or {})
    routes = alerts.get("routes") or [{"name": "default"}]
    alerts["routes"] = [{**r, "channels": [SIM_CHANNEL.format(route=r["name"])]} for r in routes]
    alerts["channels"] = {
        SIM_CHANNEL.format(route=r["name"]): {"type": "slack", "webhook_url_env": "AIMON_ALERTSIM_NEVER_SENT"}
        for r in routes
    }
    data["alerts"] = alerts
    data["report"] = {**(data.get("report") or {}), "after_run": False}
    return data  # type: ignore[no-any-return]


def write_warehouse(
    shape: Shape, path: Path, days: range, rows: int, seed: int, incident: Incident | None = None
) -> int:
    """Write the interactions and feedback of `days` into a DuckDB file: a new file, or
    (an incident's copy of a normal history) one whose rows from the first of `days` on
    are replaced."""
    slow = slow_state(shape, seed)
    con = duckdb.connect(str(path))
    total = 0
    try:
        ts = shape.columns.get("timestamp", "timestamp")
        since = dt.datetime.combine(START + dt.timedelta(days=days.start), dt.time())
        for table, col in (("interactions", ts), (shape.feedback_table, "timestamp")):
            if _exists(con, table):
                con.execute(f'DELETE FROM "{table}" WHERE "{col}" >= ?', [since]).fetchall()
        for day in days:
            ix, fb = generate_day(shape, day, rows, seed, slow, incident)
            _append(con, "interactions", ix)
            _append(con, shape.feedback_table, fb)
            total += ix.num_rows
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()
    return total


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    q = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(q, [table]).fetchall()[0][0])


def _append(con: duckdb.DuckDBPyConnection, table: str, data: Any) -> None:
    con.register("_chunk", data)
    try:
        verb = (
            f'INSERT INTO "{table}" SELECT * FROM _chunk'
            if _exists(con, table)
            else f'CREATE TABLE "{table}" AS SELECT * FROM _chunk'
        )
        con.execute(verb).fetchall()
    finally:
        con.unregister("_chunk")


def copy_database(src: Path, dst: Path) -> None:
    for suffix in ("", ".wal"):
        target = dst.with_name(dst.name + suffix)
        target.unlink(missing_ok=True)
        if src.with_name(src.name + suffix).exists():
            shutil.copyfile(src.with_name(src.name + suffix), target)


@dataclass
class DayRecord:
    day: int
    date: str
    status: str  # the run's: success | degraded
    pages: list[dict[str, Any]] = field(default_factory=list)  # first firing notifications
    items: list[dict[str, Any]] = field(default_factory=list)  # every notified alert (firing, repeat, resolved)
    events: list[dict[str, Any]] = field(default_factory=list)  # alert events (pending, firing, folded, ...)
    errors: dict[str, str] = field(default_factory=dict)  # analyzer -> error


class Simulation:
    """One history: a config, a store, a recorder per route; run_day runs one window."""

    def __init__(self, data: dict[str, Any], source: str):
        os.environ.pop("AIMON_WAREHOUSE_URL", None)
        from aimon.config import parse_config
        from aimon.store.alerts import AlertStore
        from aimon.store.metrics import Store

        self.cfg = parse_config(data, source=source)
        self.store = Store(self.cfg)
        self.alert_store = AlertStore(self.cfg)
        self.recorders = {
            name: Recorder(name)
            for route in self.cfg.alerts.routes
            for name in route.channels
            if name.startswith(SIM_CHANNEL.format(route=""))
        }

    def run_day(self, day: int) -> DayRecord:
        from aimon.tasks.alerts.pipeline import alert_window
        from aimon.tasks.contract import check_contract
        from aimon.tasks.orchestration.run import (
            AnalyzerOutcome,
            begin_run,
            open_window,
            publish,
            run_analyzer,
        )
        from aimon.tasks.registry import ANALYZERS
        from aimon.windows import daily_window

        cfg, store = self.cfg, self.store
        date = START + dt.timedelta(days=day)
        window = daily_window(date, cfg.windows.timezone)
        run = begin_run(store, window, None, notify=True, redo="all")
        ctx = open_window(cfg, window, store)
        contract = check_contract(
            ctx.warehouse, ctx.interactions, window, check_null_timestamps=cfg.contract.check_null_timestamps
        )
        outcomes = []
        for name, analyzer in ANALYZERS.items():
            t0 = time.perf_counter()
            try:
                result = run_analyzer(analyzer, ctx)
                outcomes.append(AnalyzerOutcome(name, result, None, result.seconds))
            except Exception as err:  # the flow records a failed analyzer and goes on
                outcomes.append(AnalyzerOutcome(name, None, f"{type(err).__name__}: {err}", time.perf_counter() - t0))
        summary = publish(store, run, contract, outcomes)
        for recorder in self.recorders.values():
            recorder.payloads.clear()
        alert_window(cfg, store, window, run.run_id, send=True, channels=self.recorders)
        rec = DayRecord(day, date.isoformat(), summary.status, errors={o.name: o.error for o in outcomes if o.error})
        seen: set[tuple[str, str]] = set()
        for recorder in self.recorders.values():
            for payload in recorder.payloads:
                for item in payload["items"]:
                    key = (item["alert_id"], item["status"])
                    if key in seen:  # one route with several channels: one notification
                        continue
                    seen.add(key)
                    brief = {
                        "rule": item["rule"],
                        "alert_id": item["alert_id"],
                        "status": item["status"],
                        "repeat": bool(item.get("repeat")),
                        "labels": item["labels"],
                        "folded": len(item.get("folded") or ()),
                    }
                    rec.items.append(brief)
                    if item["status"] == "firing" and not brief["repeat"]:
                        rec.pages.append(brief)
        for e in self.alert_store.events_between(window.start, window.end, window.granularity):
            rec.events.append({"rule": e.rule, "labels": e.labels, "status": e.status, "folded_into": e.folded_into})
        return rec

    def close(self) -> None:
        """Release the store's DuckDB file (so it can be copied)."""
        from aimon.engines import get_engine

        get_engine(self.cfg.store.url or self.cfg.warehouse.url).dispose()


def _alert_key(event: dict[str, Any]) -> str:
    return f"{event['rule']}{event['labels']}"


@dataclass
class IncidentResult:
    kind: str
    start: int
    days: int
    # A page in the incident's first window that the normal history does not also send
    # that day (when the normal run reached it): the incident's, not the noise's.
    paged_first_window: bool
    first_window_pages: list[str]  # the rules of those pages
    first_window_noise: list[str]  # rules paged then that the normal history pages that day too
    alerts: int  # distinct alerts firing (folded ones included) from its start to the end
    alerts_after_folding: int  # of which not folded into another
    alert_names: list[str]
    # Of `alerts`, those the normal history also fires on the same days (noise, not the
    # incident); None when the normal run did not reach those days.
    alerts_also_in_normal: int | None
    pages: int
    first_page_day: int | None  # day (from its start) of its first page the normal history does not send
    notifications_per_day: list[int]  # notified alerts (first firing, repeats, resolved) per day
    resolved_day: int | None  # day (from the incident's start) of the first resolved notice
    degraded_windows: int


def _firing(records: list[DayRecord]) -> tuple[set[str], set[str]]:
    """Alerts firing in `records` (folded ones included), and those not folded."""
    firing: set[str] = set()
    unfolded: set[str] = set()
    for r in records:
        for e in r.events:
            if e["status"] in ("firing", "recovering", "folded"):
                firing.add(_alert_key(e))
                if e["status"] != "folded":
                    unfolded.add(_alert_key(e))
    return firing, unfolded


def incident_result(inc: Incident, records: list[DayRecord], normal: list[DayRecord]) -> IncidentResult:
    firing, unfolded = _firing(records)
    days = {r.day for r in records}
    same_days = [r for r in normal if r.day in days]
    background = _firing(same_days)[0] & firing if len(same_days) == len(days) else None
    first = records[0]
    normal_first = [r for r in normal if r.day == first.day]
    noise = {(p["rule"], str(sorted(p["labels"].items()))) for r in normal_first for p in r.pages}
    own = [p for p in first.pages if (p["rule"], str(sorted(p["labels"].items()))) not in noise]
    first_page = None
    for r in records:  # the first day with a page that the normal history does not send that day
        quiet = {(p["rule"], str(sorted(p["labels"].items()))) for n in normal if n.day == r.day for p in n.pages}
        if any((p["rule"], str(sorted(p["labels"].items()))) not in quiet for p in r.pages):
            first_page = r.day - inc.start
            break
    resolved = [r.day - inc.start for r in records if any(i["status"] == "resolved" for i in r.items)]
    return IncidentResult(
        kind=inc.kind,
        start=inc.start,
        days=inc.days,
        paged_first_window=bool(own),
        first_window_pages=sorted({p["rule"] for p in own}),
        first_window_noise=sorted({p["rule"] for p in first.pages} - {p["rule"] for p in own}),
        alerts=len(firing),
        alerts_after_folding=len(unfolded),
        alert_names=sorted(firing),
        alerts_also_in_normal=None if background is None else len(background),
        pages=sum(len(r.pages) for r in records),
        first_page_day=first_page,
        notifications_per_day=[len(r.items) for r in records],
        resolved_day=resolved[0] if resolved else None,
        degraded_windows=sum(r.status != "success" for r in records),
    )


def incident_start(kind: str, days: int, start: int) -> int:
    """The subtle SRM break starts late in the long experiment; the others at `start`."""
    return max(start, int(days * 0.6)) if kind == "srm_late" else start


def simulate(
    generator: str,
    *,
    days: int = 365,
    rows: int | None = None,
    seed: int = 0,
    config: Path = DEFAULT_CONFIG,
    incidents: tuple[str, ...] = INCIDENT_KINDS,
    start: int = 35,
    after: int = AFTER_DAYS,
    workdir: Path,
    log: Any = None,
) -> dict[str, Any]:
    """The normal history of `days` windows, then each incident on its own copy."""
    shape = GENERATORS[generator]
    rows = rows or DEFAULT_ROWS[generator]
    work = workdir / generator
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.setdefault("AIMON_HOME", str(workdir / "home"))
    from aimon.env import configure_prefect, ensure_prefect_home

    configure_prefect()
    ensure_prefect_home()
    t0 = time.perf_counter()
    plan = {k: Incident(k, incident_start(k, days, start), INCIDENT_DAYS[k]) for k in incidents}
    branch_at = {inc.start for inc in plan.values()}
    if any(s >= days or s < 1 for s in branch_at):
        raise ValueError(f"incidents start on days {sorted(branch_at)}: --days {days} is too short")

    wh = work / "normal.duckdb"
    wh.unlink(missing_ok=True)
    write_warehouse(shape, wh, range(days), rows, seed)
    sim = Simulation(config_data(shape, config, wh), f"{config} ({generator})")
    normal: list[DayRecord] = []
    for day in range(days):
        if day in branch_at:  # warehouse and store as they are the day before an incident starts
            sim.close()
            copy_database(wh, work / f"branch-{day}.duckdb")
        normal.append(sim.run_day(day))
        if log:
            r = normal[-1]
            log(f"{generator} day {day:3d} {r.date} {r.status}" + "".join(f" PAGE {p['rule']}" for p in r.pages))
    sim.close()
    normal_seconds = time.perf_counter() - t0

    results = []
    for inc in plan.values():
        end = inc.start + inc.days + after
        iwh = work / f"{inc.kind}.duckdb"
        copy_database(work / f"branch-{inc.start}.duckdb", iwh)
        write_warehouse(shape, iwh, range(inc.start, end), rows, seed, inc)
        isim = Simulation(config_data(shape, config, iwh), f"{config} ({generator}, {inc.kind})")
        records = []
        for day in range(inc.start, end):
            records.append(isim.run_day(day))
            if log:
                r = records[-1]
                log(f"{generator} {inc.kind} day {day} {r.status}" + "".join(f" PAGE {p['rule']}" for p in r.pages))
        isim.close()
        results.append(asdict(incident_result(inc, records, normal)))

    pages = Counter(p["rule"] for r in normal for p in r.pages)
    return {
        "generator": generator,
        "seed": seed,
        "days": days,
        "rows": rows,
        "config": str(config),
        "normal": {
            "windows": len(normal),
            "pages": dict(sorted(pages.items())),
            "pages_total": sum(pages.values()),
            "page_list": [
                {"day": r.day, "date": r.date, "rule": p["rule"], "labels": p["labels"]}
                for r in normal
                for p in r.pages
            ],
            "notifications": sum(len(r.items) for r in normal),
            "degraded_windows": sum(r.status != "success" for r in normal),
            "errors": sorted({f"{k}: {v}" for r in normal for k, v in r.errors.items()})[:10],
            "seconds": round(normal_seconds, 1),
        },
        "incidents": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }

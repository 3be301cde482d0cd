"""The HTML report (aimon.report, `aimon report`), built from a demo store: a few demo
days seeded into DuckDB and each monitored by the real flow. Checked on the files:
every page is there, every chart has data and its numbers as CSV (equal to the
store's), every local link resolves, nothing is fetched from the network, the drawn
bounds are the alert rules', and an empty store or range says so. The rendering in a
real browser is tests/test_report_browser.py."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aimon.cli import app
from aimon.config import load_config
from aimon.demo import seed_duckdb
from aimon.records import ALL, MetricRecord, labels_json
from aimon.report import build_report, memo, window_page
from aimon.report.ab import DECISIONS
from aimon.report.bands import baseline
from aimon.report.data import load
from aimon.report.paths import CONCERNS, INDEX
from aimon.store.alerts import AlertEvent, AlertState, AlertStore
from aimon.store.metrics import Store
from aimon.tasks.abtest.results import STATUS_CODES, STATUS_TEXT
from aimon.tasks.alerts.state import alert_id
from aimon.tasks.report import rebuild_pages
from aimon.windows import Window, daily_window

REPO = Path(__file__).resolve().parent.parent
END = dt.date(2026, 11, 10)
DAYS = 5
CHART = re.compile(r'<div class="(aimon-chart|aimon-nochart)" id="([^"]+)" data-points="(\d+)">')
LINK = re.compile(r'(?:href|src)="([^"]+)"')


def write_config(tmp: Path, db: Path, **report: object) -> Path:
    data = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"] = {**data["warehouse"], "url": f"duckdb:///{db}"}
    if report:
        data["report"] = report
    path = tmp / f"monitoring-{len(list(tmp.glob('monitoring*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> tuple[Path, Path, str]:
    """(config, site folder, the CLI's output)."""
    from aimon.flows.monitor import monitor_window

    tmp = tmp_path_factory.mktemp("report")
    seed_duckdb(tmp / "wh.duckdb", days=DAYS, rows_per_day=2500, seed=7, end=END)
    cfg = write_config(tmp, tmp / "wh.duckdb")
    for offset in range(DAYS - 1, -1, -1):
        day = END - dt.timedelta(days=offset)
        monitor_window(window_start=day.isoformat(), config_path=str(cfg), notify=False)
    site = tmp / "site"
    res = CliRunner().invoke(app, ["report", "--config", str(cfg), "--output", str(site)])
    assert res.exit_code == 0, res.output
    return cfg, site, res.output


def pages(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")}


def csv_of(page: str, chart_id: str) -> list[dict[str, str]]:
    block = page[page.index(f'id="{chart_id}"') :]
    b64 = re.search(r'href="data:text/csv;base64,([^"]+)"', block)
    assert b64, chart_id
    return list(csv.DictReader(io.StringIO(base64.b64decode(b64.group(1)).decode())))


@pytest.mark.slow
def test_the_site_has_every_page_and_every_chart_has_data(demo: tuple[Path, Path, str]) -> None:
    _, site, output = demo
    assert output.strip().splitlines()[-1] == (site / INDEX).as_uri()
    got = pages(site)
    days = [END - dt.timedelta(days=o) for o in range(DAYS)]
    assert {INDEX, *CONCERNS} <= set(got)
    assert {window_page(daily_window(d)) for d in days} <= set(got), sorted(got)
    for name in CONCERNS:
        charts = CHART.findall(got[name])
        drawn = [c for c in charts if c[0] == "aimon-chart"]
        assert drawn, f"{name} has no chart"
        assert all(int(n) > 0 for _, _, n in drawn), name
        ids = [i for _, i, _ in charts]
        assert len(ids) == len(set(ids)), f"{name}: chart ids repeat"
    assert "chart-dist-language" in got["drift.html"]  # the distributions from the stored sketches
    assert "chart-ab-prompt-v2-rating" in got["ab.html"]
    assert max(p.stat().st_size for p in site.rglob("*.html")) <= 5_000_000
    # Every empty chart says why.
    for name, text in got.items():
        for m in re.finditer(r'<div class="aimon-nochart"[^>]*>(.*?)</div>', text):
            assert 'class="aimon-caption aimon-empty">no' in m.group(1) or "aimon-empty" in m.group(1), name


@pytest.mark.slow
def test_csv_links_carry_the_stored_numbers(demo: tuple[Path, Path, str]) -> None:
    cfg_path, site, _ = demo
    cfg = load_config(cfg_path)
    data = load(cfg, "daily")
    rows = csv_of((site / "operational.html").read_text(), "chart-requests")
    assert len(rows) == DAYS
    stored = data.one("llm_requests", model="__all__", endpoint="__all__")
    for row, start in zip(rows, sorted(stored), strict=True):
        assert row["window"] == f"{start:%Y-%m-%d %H:%M}"
        assert float(row["all"]) == stored[start]
    # The window page's CSV holds every figure of the window.
    last = daily_window(END)
    figures = list(csv.DictReader(io.StringIO(_figures_csv((site / window_page(last)).read_text()))))
    assert len(figures) == len(data.by_window[last.start])


def _figures_csv(page: str) -> str:
    m = re.search(r'id="figures-csv" download="[^"]+" href="data:text/csv;base64,([^"]+)"', page)
    assert m
    return base64.b64decode(m.group(1)).decode()


@pytest.mark.slow
def test_links_resolve_and_nothing_comes_from_the_network(demo: tuple[Path, Path, str]) -> None:
    _, site, _ = demo
    for name, text in pages(site).items():
        assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', text), name
        for target in LINK.findall(text):
            if target.startswith(("data:", "#", "http://", "https://")):
                continue
            path = (site / name).parent / target.split("#")[0]
            assert path.resolve().is_file(), f"{name}: {target}"
    assert (site / "assets" / "plotly.min.js").stat().st_size > 1_000_000  # shipped once, offline


@pytest.mark.slow
def test_the_drawn_bound_is_the_alert_rules(demo: tuple[Path, Path, str]) -> None:
    cfg_path, site, _ = demo
    cfg = load_config(cfg_path)
    data = load(cfg, "daily")
    judged = [e for e in data.events if e.rule in ("LatencyP95High", "CostSpike", "QualityDrop") and e.bound]
    assert judged, "the demo's last day breaches the baseline rules"
    rules = {r.name: r for r in cfg.alerts.rules}
    for e in judged:
        points = data.figures[e.metric][e.labels]
        drawn = baseline(rules[e.rule], data, points, data.labels[e.labels])
        assert drawn[e.window_start][1] == pytest.approx(e.bound), e
    assert "LatencyP95High bound" in (site / "alerts.html").read_text()


def test_decision_codes_match_the_ab_analysis() -> None:
    assert {code: STATUS_TEXT[name] for name, code in STATUS_CODES.items()} == DECISIONS


def test_an_empty_store_and_an_empty_range_say_so(tmp_path: Path, demo: tuple[Path, Path, str]) -> None:
    cfg = load_config(write_config(tmp_path, tmp_path / "none.duckdb"))
    res = build_report(cfg, output=tmp_path / "empty")
    assert res.problem and not (tmp_path / "none.duckdb").exists()  # never creates the store
    for name in (INDEX, *CONCERNS):
        text = (tmp_path / "empty" / name).read_text()
        assert "there is no store yet" in text and 'class="aimon-chart"' not in text, name
    demo_cfg = load_config(demo[0])
    res = build_report(demo_cfg, output=tmp_path / "range", start=dt.date(2001, 1, 1), end=dt.date(2001, 1, 2))
    assert res.windows == 0
    assert "no daily windows have been monitored in windows from 2001-01-01" in (tmp_path / "range" / INDEX).read_text()


@pytest.mark.slow
def test_after_run_rebuilds_the_windows_page_and_never_fails_the_run(
    tmp_path: Path, demo: tuple[Path, Path, str]
) -> None:
    from aimon.flows.monitor import monitor_window

    db = load_config(demo[0]).warehouse.url.removeprefix("duckdb:///")
    out = tmp_path / "after"
    cfg = write_config(tmp_path, Path(db), after_run=True, output=str(out))
    summary = monitor_window(window_start=END.isoformat(), config_path=str(cfg), notify=False)
    assert summary is not None and summary.status == "success"
    assert any(n.startswith("report: ") and "pages rebuilt" in n for n in summary.notes), summary.notes
    written = set(pages(out))
    assert {
        INDEX,
        *CONCERNS,
        window_page(daily_window(END)),
        window_page(daily_window(END - dt.timedelta(days=1))),
    } == written
    # The pages it rebuilt are the full build's (it reads only the charted metrics).
    full = tmp_path / "full"
    build_report(load_config(cfg), output=full)
    built = re.compile(r"built \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    for name in written:
        assert built.sub("", (out / name).read_text()) == built.sub("", (full / name).read_text()), name
    # A report that cannot be written is a note, not a failure.
    (tmp_path / "blocked").write_text("a file where the folder should be")
    broken = load_config(write_config(tmp_path, Path(db), after_run=True, output=str(tmp_path / "blocked")))
    note = rebuild_pages(broken, daily_window(END))
    assert note and note.startswith("report: not rebuilt")


def _event(window: Window, rule: str, metric: str, labels: dict[str, str], status: str, **kw: object) -> AlertEvent:
    fields: dict[str, object] = dict(
        window_start=window.start,
        window_end=window.end,
        granularity="daily",
        rule=rule,
        labels=labels_json(labels),
        metric=metric,
        severity="warning",
        route="default",
        status=status,
        value=200.0,
        bound=150.0,
        active_since=window.start,
        silenced_by=None,
        run_id="r1",
    )
    return AlertEvent(**{**fields, **kw})  # type: ignore[arg-type]


def test_the_alerts_page_shows_folded_and_recovering_alerts(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, tmp_path / "store.duckdb"))
    day1, day2 = daily_window(END - dt.timedelta(days=1)), daily_window(END)
    store = Store(cfg)
    store.ensure()
    for w in (day1, day2):
        store.replace_window(w, [MetricRecord.of("llm_cost_usd", 200.0, model="a", endpoint=ALL)], "r1")
    parent_labels = {"model": "a", "endpoint": ALL}
    parent = alert_id("CostSpike", "daily", labels_json(parent_labels))
    gone = alert_id("CostSpike", "daily", labels_json({"model": "b", "endpoint": ALL}))  # no state left
    astore = AlertStore(cfg)
    astore.ensure()
    firing = _event(day2, "CostSpike", "llm_cost_usd", parent_labels, "firing")
    state = AlertState(
        parent, "CostSpike", "daily", firing.labels, "llm_cost_usd", "warning", "default", "firing", 200.0, 150.0,
        day2.start, day2.start,
    )  # fmt: skip
    events = [
        firing,
        _event(day2, "CostSpike", "llm_cost_usd", {"model": "a", "endpoint": "chat"}, "folded", folded_into=parent),
        _event(day2, "CostSpike", "llm_cost_usd", {"model": "a", "endpoint": "rag"}, "folded", folded_into=gone),
        _event(
            day2, "ErrorRateHigh", "llm_error_rate", parent_labels, "recovering", note="recovering: 1 of 2 windows back"
        ),
    ]
    astore.commit_evaluation(
        window_start=day2.start,
        granularity="daily",
        rules=["CostSpike", "ErrorRateHigh"],
        states=[state],
        events=events,
        outbox=[],
    )
    build_report(cfg, output=tmp_path / "site")
    text = (tmp_path / "site" / "alerts.html").read_text()
    table_html = text[text.index('id="alert-events"') :].split("</table>")[0]
    cells = re.compile(r"<t[hd]>(.*?)</t[hd]>")
    header, *body = [
        [re.sub("<[^>]+>", "", c) for c in cells.findall(r)] for r in re.findall(r"<tr>(.*?)</tr>", table_html)
    ]
    rows = [dict(zip(header, r, strict=True)) for r in body]
    by_series = {r["series"]: r for r in rows}
    assert by_series["llm_cost_usd{endpoint=chat, model=a}"]["status"] == "folded"
    assert by_series["llm_cost_usd{endpoint=chat, model=a}"]["folded into"] == "CostSpike{endpoint=all, model=a}"
    assert by_series["llm_cost_usd{endpoint=rag, model=a}"]["folded into"] == f"alert {gone[:12]}"
    recovering = by_series["llm_error_rate{endpoint=all, model=a}"]
    assert recovering["status"] == "recovering" and recovering["note"] == "recovering: 1 of 2 windows back"
    assert by_series["llm_cost_usd{endpoint=all, model=a}"]["folded into"] == ""
    # The filters: a select on the status column and one on "folded into" (options from the rows).
    box = re.search(r'<div class="aimon-filters" data-filter-for="alert-events">(.*?)</div>', text)
    assert box
    selects = dict(re.findall(r"<label>([^<]+) <select data-col=\"(\d+)\"", box.group(1)))
    assert header[int(selects["status"])] == "status" and header[int(selects["folded into"])] == "folded into"
    # The CSV says the same.
    csv_rows = csv_of(text, "alert-events")
    folded = [r for r in csv_rows if r["status"] == "folded"]
    assert sorted(r["folded into"] for r in folded) == sorted(
        ["CostSpike{endpoint=all, model=a}", f"alert {gone[:12]}"]
    )


def test_charts_shade_recovering_and_folded_windows_as_firing() -> None:
    """An alert still open (recovering) or sent inside another's notification (folded)
    was firing in that window: the chart shades it red like a firing one; pending is
    orange; resolved is not shaded."""
    from types import SimpleNamespace

    from aimon.report.bands import alert_marks

    days = [daily_window(dt.date(2026, 3, d)) for d in range(1, 7)]
    labels = labels_json({"model": "a"})

    def event(w: Window, status: str) -> AlertEvent:
        return AlertEvent(
            w.start, w.end, "daily", "R", labels, "m", "warning", "default", status, 1.0, 0.5, None, None, "r"
        )

    statuses = ["pending", "firing", "recovering", "folded", "resolved", "firing"]
    events = [event(w, st) for w, st in zip(days, statuses, strict=True)]
    events.append(event(days[1], "pending"))  # a firing window stays red whatever else is there
    data = SimpleNamespace(events=events, windows=days, x=lambda t: t)
    marks = alert_marks(data, "m", [{"model": "a"}])  # type: ignore[arg-type]
    assert [(m.x0, m.status) for m in marks] == [
        (days[0].start, "pending"),
        (days[1].start, "firing"),
        (days[2].start, "firing"),
        (days[3].start, "firing"),
        (days[5].start, "firing"),
    ]


def test_a_rebuild_learns_only_what_changed_and_draws_what_a_fresh_build_draws(tmp_path: Path) -> None:
    """The bands of the last build are kept beside the site (aimon.report.memo): a rebuild
    after a backfill of an old window draws the bands a build from nothing draws."""
    cfg = load_config(write_config(tmp_path, tmp_path / "store.duckdb"))
    store = Store(cfg)
    store.ensure()
    days = [daily_window(END - dt.timedelta(days=k)) for k in range(29, -1, -1)]
    for k, w in enumerate(days):
        cost = 100.0 + 10 * (k % 7) + k
        store.replace_window(w, [MetricRecord.of("llm_cost_usd", cost, model="a", endpoint=ALL)], "r1")
    site, fresh = tmp_path / "site", tmp_path / "fresh"
    build_report(cfg, output=site)
    assert (site / "assets" / "bands.json").exists()
    rule = next(r for r in cfg.alerts.rules if r.name == "CostSpike")
    labels = {"model": "a", "endpoint": ALL}

    def band(out: Path) -> dict[dt.datetime, tuple[float, float]]:
        data = load(cfg, "daily")
        data.memo_in = memo.read(out)
        return baseline(rule, data, data.figures["llm_cost_usd"][labels_json(labels)], labels)

    before = band(site)
    assert len(before) >= 10, "the series has a drawn band"
    # A backfill rewrites an old window; a run of the last one rebuilds the pages.
    store.upsert(days[12], [MetricRecord.of("llm_cost_usd", 900.0, model="a", endpoint=ALL)], "r2")
    build_report(cfg, output=site, only_window=days[-1])
    build_report(cfg, output=fresh)
    after = band(site)
    assert after == band(fresh) == band(tmp_path / "nothing")
    assert after != before and all(after[s] == before[s] for s in before if s <= days[12].start)
    built = re.compile(r"built \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert built.sub("", (site / "cost.html").read_text()) == built.sub("", (fresh / "cost.html").read_text())

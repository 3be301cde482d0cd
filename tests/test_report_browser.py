"""The HTML report in a real browser (Debian's Chromium, headless, through Playwright):
every page of the demo's report loads over file:// with no console or page error and no
request off the machine, every chart is drawn by plotly with as many points as its
data-points attribute says, and every local link resolves. A first test proves the
harness itself catches each of those faults on a page made here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline
import pytest
from playwright.sync_api import Browser

from aimon.report.paths import CONCERNS, INDEX
from tests.browser import Visit, chromium, crawl, local_links, site_problems
from tests.demo_report import END, build_demo_report, days_ending

DAYS = 6  # END-5..END-3 give the baselines, END-2 is the error burst, END the incident day


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def chart(div_id: str, n: int, declared: int | None = None) -> str:
    """A chart as the report writes it: a wrapper div with data-points around plotly's
    graph div, a data trace (markers) and a threshold line (lines only, not counted)."""
    fig = go.Figure(go.Scatter(x=list(range(n)), y=[i % 3 for i in range(n)], mode="lines+markers"))
    fig.add_trace(go.Scatter(x=[0, n - 1], y=[2.5, 2.5], mode="lines", name="threshold"))
    plot = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"{div_id}-plot")
    points = n if declared is None else declared
    return f'<div class="aimon-chart" id="{div_id}" data-points="{points}"><h3>{div_id}</h3>{plot}</div>'


def page(body: str) -> str:
    head = '<meta charset="utf-8"><title>t</title><script src="assets/plotly.min.js"></script>'
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


@pytest.mark.slow
def test_harness_flags_each_fault(tmp_path: Path, browser: Browser) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "plotly.min.js").write_text(plotly.offline.get_plotlyjs())
    (tmp_path / "index.html").write_text(
        page(f'<h1 id="top">ok</h1>{chart("good", 5)}<a href="bad.html">bad</a> <a href="#top">top</a>')
    )
    (tmp_path / "data.csv").write_text("x,y\n")
    (tmp_path / "bad.html").write_text(
        page(
            chart("miscounted", 4, declared=7)
            + '<div class="aimon-chart" id="never" data-points="3"></div>'
            + '<div class="aimon-nochart" id="said" data-points="0"><h3>t</h3><p>no values stored</p></div>'
            + '<div class="aimon-nochart" id="mute" data-points="0"></div>'
            + "<script>console.error('boom')</script><script>null.x</script>"
            + '<img src="https://cdn.example.org/pixel.png">'
            + '<a href="missing.html">m</a> <a href="index.html#nowhere">n</a> <a href="data.csv">csv</a>'
            + '<a href="https://example.org/">off-site link, not a request</a>'
        )
    )
    (tmp_path / "orphan.html").write_text(page(chart("lonely", 2)))

    visits = crawl(browser, tmp_path, chart_timeout_ms=1000)  # the undrawn chart waits this long

    assert {p.name for p in visits} == {"index.html", "bad.html", "orphan.html"}
    index = visits[(tmp_path / "index.html").resolve()]
    assert index.problems() == []
    [good] = index.charts
    assert (good.points, good.declared, good.traces, good.data_traces, good.drawn) == (5, 5, 2, 1, 5)
    problems = "\n".join(site_problems(visits))
    for expected in [
        "bad.html: console error: boom",
        "bad.html: page error: ",
        "bad.html: request outside file://: https://cdn.example.org/pixel.png",
        "bad.html: chart 'miscounted' plots 4 points, its data-points says 7",
        "bad.html: chart 'never' was not drawn by plotly",
        "bad.html: empty chart 'mute' shows a plot or no caption saying why",
        "bad.html: link 'missing.html' points at",
        "bad.html: link 'index.html#nowhere': no element with id 'nowhere' there",
    ]:
        assert expected in problems, problems
    assert "data.csv" not in problems and "example.org/'" not in problems and "orphan" not in problems
    assert "'said'" not in problems


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    t0 = time.perf_counter()
    site = build_demo_report(tmp_path_factory.mktemp("demo"), days=DAYS)
    print(f"demo report built in {time.perf_counter() - t0:.1f}s")
    return site


def reachable(visits: dict[Path, Visit], start: Path) -> set[Path]:
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen or path not in visits:
            continue
        seen.add(path)
        todo += [link.target for link in local_links(visits[path]) if link.target is not None]
    return seen


@pytest.mark.slow
def test_demo_report_renders_offline_with_every_chart_drawn_and_every_link_resolving(
    demo_site: Path, browser: Browser
) -> None:
    t0 = time.perf_counter()
    visits = crawl(browser, demo_site)
    print(f"{len(visits)} pages in {time.perf_counter() - t0:.1f}s")

    pages = {p.relative_to(demo_site).as_posix() for p in visits}
    windows = {f"windows/daily-{day}.html" for day in days_ending(END, DAYS)}
    assert {INDEX, *CONCERNS, *windows} <= pages, pages
    problems = site_problems(visits)
    assert not problems, "\n".join(problems)
    # Every page is one click path from the overview, and every page says what it is.
    assert reachable(visits, (demo_site / INDEX).resolve()) == set(visits)
    assert all(v.title for v in visits.values())
    # The pages that plot history do plot it: each has charts, each chart its points.
    charts = {p.relative_to(demo_site).as_posix(): v.charts for p, v in visits.items()}
    for name in [INDEX, "operational.html", "cost.html", "quality.html", "drift.html", "ab.html"]:
        assert charts[name], f"{name} has no .aimon-chart"
    assert sum(len(c) for c in charts.values()) >= 20
    assert all(c.points > 0 for cs in charts.values() for c in cs)

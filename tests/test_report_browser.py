"""The HTML report in a real browser (Debian's Chromium, headless, through Playwright):
every page of the demo's report loads over file:// with no console or page error and no
request off the machine, every chart is drawn by plotly with as many points as its
data-points attribute says, and every local link resolves. A first test proves the
harness itself catches each of those faults on a page made here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline
import pytest
from playwright.sync_api import Browser

from tests.browser import chromium, crawl, site_problems


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def chart(div_id: str, n: int, declared: int | None = None) -> str:
    fig = go.Figure(go.Scatter(x=list(range(n)), y=[i % 3 for i in range(n)]))
    html = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)
    points = n if declared is None else declared
    # The chart div is plotly's own graph div, as the report writes it.
    return html.replace(f'id="{div_id}"', f'id="{div_id}" class="aimon-chart" data-points="{points}"', 1)


def page(body: str) -> str:
    head = '<meta charset="utf-8"><title>t</title><script src="assets/plotly.min.js"></script>'
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


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
            + "<script>console.error('boom')</script><script>null.x</script>"
            + '<img src="https://cdn.example.org/pixel.png">'
            + '<a href="missing.html">m</a> <a href="index.html#nowhere">n</a> <a href="data.csv">csv</a>'
            + '<a href="https://example.org/">off-site link, not a request</a>'
        )
    )
    (tmp_path / "orphan.html").write_text(page(chart("lonely", 2)))

    visits = crawl(browser, tmp_path, chart_timeout_ms=2000)  # the undrawn chart waits this long

    assert {p.name for p in visits} == {"index.html", "bad.html", "orphan.html"}
    index = visits[(tmp_path / "index.html").resolve()]
    assert index.problems() == []
    [good] = index.charts
    assert (good.points, good.declared, good.traces) == (5, 5, 1) and good.main_svg and good.drawn
    problems = "\n".join(site_problems(visits))
    for expected in [
        "bad.html: console error: boom",
        "bad.html: page error: ",
        "bad.html: request outside file://: https://cdn.example.org/pixel.png",
        "bad.html: chart 'miscounted' plots 4 points, its data-points says 7",
        "bad.html: chart 'never' was not drawn by plotly",
        "bad.html: link 'missing.html' points at",
        "bad.html: link 'index.html#nowhere': no element with id 'nowhere' there",
    ]:
        assert expected in problems, problems
    assert "data.csv" not in problems and "example.org/'" not in problems and "orphan" not in problems

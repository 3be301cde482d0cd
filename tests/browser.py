"""Debian's Chromium, headless, driven by Playwright: open the static report's pages over
file:// and say what a reader would meet there. Used by tests/test_report_browser.py and
by bench/screenshots.py (`make screenshots`), so the docs show what the test checked.

No browser is downloaded: Playwright launches /usr/bin/chromium (`make services` installs
it), with the flags that keep it off this machine's closed network (no background
networking, component updates or sync) and a fresh temporary profile per launch.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

from playwright.sync_api import Browser, Page, Request, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHART_TIMEOUT_MS = 20_000

# One entry per `.aimon-chart`: the element plotly drew into (the chart div itself or the
# graph div inside it), the data points of its traces as plotly holds them, and what its
# rendered SVG holds. A data trace is a bar (or pie) or one that draws markers; a
# lines-only trace is a reference line (threshold, baseline, band, interval) and holds no
# data points: the rule the report's data-points attribute counts by. `_fullData` is
# plotly's resolved copy of `data` (defaults filled in, base64 arrays decoded).
CHARTS_JS = """() => Array.from(document.querySelectorAll('.aimon-chart')).map(el => {
  const gd = el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
  const traces = gd ? (gd._fullData || gd.data || []).filter(t => t.visible !== false) : [];
  const isData = t => ['bar', 'histogram', 'pie'].includes(t.type) || String(t.mode || '').includes('markers');
  const values = t => t.type === 'pie' ? t.values : t.type === 'histogram' ? (t.x || t.y)
    : t.orientation === 'h' ? t.x : t.y;
  const finite = a => a ? Array.from(a).filter(v => v !== null && v !== '' && Number.isFinite(Number(v))).length : 0;
  const q = sel => gd ? Array.from(gd.querySelectorAll(sel)) : [];
  return {
    id: el.id,
    declared: el.dataset.points === undefined ? null : Number(el.dataset.points),
    plotted: !!gd,
    main_svg: q('svg.main-svg').length,
    traces: traces.length,
    data_traces: traces.filter(isData).length,
    points: traces.filter(isData).reduce((n, t) => n + finite(values(t)), 0),
    drawn: q('.scatterlayer .trace path.point').length + q('.pielayer .slice').length
      + q('.barlayer .trace g.point path').filter(p => !['', 'M0,0Z'].includes(p.getAttribute('d') || '')).length,
  };
})"""
# A chart with nothing to plot must say why (a caption), never show an empty plot.
NOCHARTS_JS = """() => Array.from(document.querySelectorAll('.aimon-nochart')).map(el => ({
  id: el.id, text: el.innerText.trim(), plot: !!el.querySelector('.js-plotly-plot'),
}))"""

LINKS_JS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
ANCHORS_JS = "() => Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name'))"
CHARTS_READY_JS = """() => Array.from(document.querySelectorAll('.aimon-chart')).every(el => {
  const gd = el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
  return gd && gd.querySelector('svg.main-svg');
})"""


@dataclass(frozen=True)
class Chart:
    id: str
    declared: int | None  # the div's data-points attribute
    plotted: bool  # plotly made a graph div
    main_svg: int  # plotly's <svg class="main-svg"> layers
    traces: int
    data_traces: int  # traces that are data, not reference lines
    points: int  # finite values in the data traces
    drawn: int  # markers, bars and slices in the rendered SVG


@dataclass
class Visit:
    """What one page load showed: problems, requests, charts and links."""

    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    nocharts: list[dict[str, object]] = field(default_factory=list)  # `.aimon-nochart`: id, text, plot
    links: list[str] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)  # ids and a[name]s a #fragment can point at
    load_seconds: float = 0.0

    @property
    def offsite_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]

    def problems(self) -> list[str]:
        """Everything a reader should not meet; empty for a good page."""
        out = [f"console error: {m}" for m in self.console_errors]
        out += [f"page error: {m}" for m in self.page_errors]
        out += [f"failed request: {u}" for u in self.failed_requests]
        out += [f"request outside file://: {u}" for u in self.offsite_requests]
        for c in self.charts:
            if not (c.plotted and c.main_svg):
                out.append(f"chart {c.id!r} was not drawn by plotly ({c})")
            elif c.points <= 0:
                out.append(f"chart {c.id!r} has no data points ({c})")
            elif c.drawn <= 0:
                out.append(f"chart {c.id!r} drew no marker, bar or slice in its SVG ({c})")
            if c.declared is None:
                out.append(f"chart {c.id!r} has no data-points attribute")
            elif c.points != c.declared:
                out.append(f"chart {c.id!r} plots {c.points} points, its data-points says {c.declared}")
        for n in self.nocharts:
            if n["plot"] or not n["text"]:
                out.append(f"empty chart {n['id']!r} shows a plot or no caption saying why ({n})")
        return out


@contextmanager
def chromium(executable: Path = CHROMIUM) -> Iterator[Browser]:
    """Headless Debian Chromium; fails with what to do when it is not installed."""
    if not executable.exists():
        raise FileNotFoundError(f"{executable} is missing: run `make services` (installs Debian's chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """One browser tab, reused from page to page (a fresh context per page costs ~1 s);
    whatever the tab sees is recorded on the page being visited."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.seen = Visit("about:blank")
        page.on("console", lambda m: self.seen.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.seen.page_errors.append(str(e)))
        page.on("request", lambda r: self.seen.requests.append(r.url))
        page.on("requestfailed", self._failed)
        page.on("websocket", lambda ws: self.seen.requests.append(ws.url))

    def _failed(self, request: Request) -> None:
        if request.url.startswith("file:"):  # refused off-site requests are reported as off-site
            self.seen.failed_requests.append(f"{request.url} ({request.failure})")

    def visit(self, url: str, *, screenshot: Path | None = None, chart_timeout_ms: int = CHART_TIMEOUT_MS) -> Visit:
        """Load `url`, wait until plotly has drawn every `.aimon-chart`, read the page, and
        take a PNG of its first screen if asked."""
        self.seen = seen = Visit(url)
        page = self.page
        t0 = time.perf_counter()
        page.goto(url, wait_until="load")
        with suppress(PlaywrightTimeout):  # a chart left undrawn is reported by Visit.problems
            page.wait_for_function(CHARTS_READY_JS, timeout=chart_timeout_ms)
        seen.load_seconds = time.perf_counter() - t0
        seen.title = page.title()
        seen.charts = [Chart(**c) for c in page.evaluate(CHARTS_JS)]
        seen.nocharts = page.evaluate(NOCHARTS_JS)
        seen.links = page.evaluate(LINKS_JS)
        seen.anchors = set(page.evaluate(ANCHORS_JS))
        if screenshot is not None:
            page.wait_for_timeout(300)  # let plotly's first transitions settle
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
        return seen


@contextmanager
def tab(browser: Browser, width: int = 1280, height: int = 900) -> Iterator[Tab]:
    """A tab in its own context, with every request outside file:// refused at once (the
    report must work offline; a refused request is still recorded)."""
    context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
    context.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: route.abort("internetdisconnected"))
    try:
        yield Tab(context.new_page())
    finally:
        context.close()


@dataclass(frozen=True)
class Link:
    page: str  # the page that holds the link
    href: str
    target: Path | None  # the local file it points at; None for an off-site link
    fragment: str


def local_links(visit_: Visit) -> list[Link]:
    """Every <a href> of a visited file:// page, resolved against it."""
    base = Path(unquote(urlparse(visit_.url).path))
    out = []
    for href in visit_.links:
        url, fragment = urldefrag(href)
        scheme = urlparse(url).scheme
        if scheme and scheme != "file":
            out.append(Link(visit_.url, href, None, fragment))
            continue
        path = Path(unquote(urlparse(url).path)) if scheme == "file" else base.parent / unquote(url) if url else base
        out.append(Link(visit_.url, href, path.resolve(), fragment))
    return out


def _is_page(path: Path | None) -> bool:
    return path is not None and path.suffix in {".html", ".htm"}


def crawl(browser: Browser, root: Path, chart_timeout_ms: int = CHART_TIMEOUT_MS) -> dict[Path, Visit]:
    """Visit `root/index.html`, every local page it links to, transitively, and every
    other .html file under `root` (so an orphan page is checked too)."""
    index = (root / "index.html").resolve()
    todo = [index, *sorted(p.resolve() for p in root.rglob("*.html") if p.resolve() != index)]
    visits: dict[Path, Visit] = {}
    with tab(browser) as t:
        while todo:
            path = todo.pop(0)
            if path in visits or not path.is_file():
                continue
            visits[path] = t.visit(path.as_uri(), chart_timeout_ms=chart_timeout_ms)
            todo += [link.target for link in local_links(visits[path]) if _is_page(link.target)]
    return visits


def site_problems(visits: dict[Path, Visit]) -> list[str]:
    """Every page's problems, and every local link that does not resolve: a missing file,
    a page that failed to load, or a #fragment with no element of that id."""
    out = [f"{path.name}: {p}" for path, v in visits.items() for p in v.problems()]
    for path, v in visits.items():
        for link in local_links(v):
            if link.target is None:
                continue
            where = f"{path.name}: link {link.href!r}"
            if not link.target.exists():
                out.append(f"{where} points at {link.target}, which does not exist")
            elif _is_page(link.target):
                if link.target not in visits:
                    out.append(f"{where} was not loaded")
                elif link.fragment and link.fragment not in visits[link.target].anchors:
                    out.append(f"{where}: no element with id {link.fragment!r} there")
    return out

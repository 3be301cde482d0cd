"""`make screenshots`: the docs' pictures of the HTML report (docs/report.md), taken by the
browser harness the report's test uses (tests/browser.py: Debian's Chromium, headless,
through Playwright) on the demo's report (tests/demo_report.py: demo days seeded, each
monitored by the flow, then `aimon report`).

Each page is checked as the test checks it (no console or page error, no request off the
machine, every chart drawn with its points) before its picture is kept, so the docs never
show a broken page. PNGs go to docs/img/report-*.png; ~2 min on 2 cores."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from prefect.testing.utilities import prefect_test_harness

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the harness and the demo builder live in tests/

from tests.browser import chromium, tab  # noqa: E402  after the path insert
from tests.demo_report import END, build_demo_report  # noqa: E402

# docs/img/<name>.png <- page of the report, relative to its folder.
SHOTS = {
    "report-overview": "index.html",
    "report-window": f"windows/daily-{END}.html",  # the incident day
    "report-drift": "drift.html",
    "report-ab": "ab.html",
    "report-cost": "cost.html",
}
MAX_BYTES = 500_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14, help="demo days (default 14, as `aimon demo`)")
    parser.add_argument("--rows-per-day", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aimon-shots-") as tmp, prefect_test_harness(server_startup_timeout=180):
        site = build_demo_report(Path(tmp), days=args.days, rows_per_day=args.rows_per_day)
        built = time.perf_counter() - t0
        failed = False
        with chromium() as browser, tab(browser, args.width, args.height) as t:
            for name, page in SHOTS.items():
                out = args.out / f"{name}.png"
                seen = t.visit((site / page).as_uri(), screenshot=out)
                size = out.stat().st_size
                print(f"{out.relative_to(REPO)}  {page}  {len(seen.charts)} charts  {size / 1000:.0f} kB")
                for problem in seen.problems():
                    print(f"  {page}: {problem}", file=sys.stderr)
                    failed = True
                if size > MAX_BYTES:
                    print(f"  {out.name} is {size / 1000:.0f} kB, over {MAX_BYTES / 1000:.0f} kB", file=sys.stderr)
                    failed = True
    print(f"report built in {built:.1f}s, screenshots in {time.perf_counter() - t0 - built:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

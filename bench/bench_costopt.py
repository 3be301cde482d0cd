"""What the cost optimiser adds to a run on DuckDB: one demo day of `--rows` rows with
prompts (aimon.demo.generate_day: /summarize repeats popular documents, /chat mostly
unique questions plus FAQs, /rag long shared headers), the analyzer timed alone with
the defaults, with the exact cache's lookback at 1 window, and with the cache part off;
and how much it read into Python (rows fetched, and whether any value was a prompt).
docs/analyses/cost.md, "Cost optimisation".

    nice .venv/bin/python bench/bench_costopt.py [--rows 10000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from aimon.config import parse_config
from aimon.config.loader import packaged_config
from aimon.demo import generate_day
from aimon.store.metrics import Store
from aimon.tasks.costopt import analyze_costopt
from aimon.tasks.orchestration.run import open_window
from aimon.warehouse import Warehouse
from aimon.windows import daily_window

DAY = dt.date(2026, 11, 10)
CHUNK = 2_000_000


def add_prompt_hash(path: Path) -> None:
    """A `prompt_hash` column as an app logging aimon.prompts.prompt_hash would fill it
    (the same normalisation in SQL), and a view without the prompt text."""
    con = duckdb.connect(str(path))
    cols = [r[0] for r in con.execute("DESCRIBE interactions").fetchall()]
    if "prompt_hash" not in cols:
        con.execute("ALTER TABLE interactions ADD COLUMN prompt_hash VARCHAR")
        con.execute(
            "UPDATE interactions SET prompt_hash = md5(trim(regexp_replace(prompt, '[ \\t\\n\\r\\f\\v]+', ' ', 'g')))"
        )
    con.execute("CREATE OR REPLACE VIEW hashed AS SELECT * EXCLUDE (prompt) FROM interactions")
    con.execute("CREATE OR REPLACE VIEW texts AS SELECT * EXCLUDE (prompt_hash) FROM interactions")
    con.close()


def seed(path: Path, rows: int) -> None:
    rng = np.random.default_rng(11)
    con = duckdb.connect(str(path))
    for day, n_day in ((DAY - dt.timedelta(days=1), rows // 10), (DAY, rows)):
        done = 0
        while done < n_day:
            n = min(CHUNK, n_day - done)
            chunk = generate_day(day, n, rng, day_offset=1, row_offset=done, quality=False, prompts=True)  # noqa: F841
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'interactions'")
            if exists.fetchone()[0]:  # type: ignore[index]
                con.execute("INSERT INTO interactions SELECT * FROM chunk")
            else:
                con.execute("CREATE TABLE interactions AS SELECT * FROM chunk")
            done += n
    con.close()


class Counting:
    """Counts what the warehouse hands to Python during the analyzer."""

    def __init__(self) -> None:
        self.rows = 0
        self.longest_text = 0

    def wrap(self, fetch: Any) -> Any:
        def counted(*a: Any, **k: Any) -> Any:
            out = fetch(*a, **k)
            self.rows += len(out)
            for r in out:
                for v in r.values():
                    if isinstance(v, str):
                        self.longest_text = max(self.longest_text, len(v))
            return out

        return counted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the day")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="aimon-costopt-"))
    path = work / "warehouse.duckdb"
    if not path.exists():
        t0 = time.perf_counter()
        seed(path, args.rows)
        print(f"seeded {args.rows:,} rows (+10% the day before) in {time.perf_counter() - t0:.0f} s", flush=True)
    add_prompt_hash(path)
    import yaml

    base = yaml.safe_load(packaged_config().read_text())
    print("| rows | variant | seconds | rows fetched | longest text fetched |\n|---|---|---|---|---|")
    for name, table, opt in (
        ("prompt text (defaults)", "texts", {}),
        ("prompt text, cache lookback 1 window", "texts", {"cache": {"lookback_windows": 1}}),
        ("prompt_hash and text", "interactions", {}),
        ("prompt_hash, no text", "hashed", {}),
        ("cache off", "texts", {"cache": {"enabled": False}}),
    ):
        cfg = parse_config(
            {
                "warehouse": {"url": f"duckdb:///{path}", "interactions_table": table},
                "pricing": base["pricing"],
                "cost": {"optimisation": opt},
            },
            source="<bench>",
        )
        ctx = open_window(cfg, daily_window(DAY), Store(cfg))
        counter = Counting()
        wh: Warehouse = ctx.warehouse
        wh.fetch = counter.wrap(wh.fetch)  # type: ignore[method-assign]
        t0 = time.perf_counter()
        result = analyze_costopt(ctx)
        took = time.perf_counter() - t0
        print(f"| {args.rows:,} | {name} | {took:.2f} | {counter.rows:,} | {counter.longest_text} |", flush=True)
        if table == "texts" and not opt:
            best = result.details["recommendations"][:3]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process (seeding included): {peak:,.0f} MiB")
    for r in best:
        print(f"  {r['action']}: ~${r['monthly_usd']:,.0f}/month ({r['evidence']})")


if __name__ == "__main__":
    main()

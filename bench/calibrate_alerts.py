"""Can a person trust the default alert rules? A simulated normal year, window by window.

For each generator (bench/alertsim/generators.py: "saas" and "enterprise", two
differently shaped normal years), runs the monitor on every daily window of the normal
history with the config under test (the default configs/monitoring.yaml unless
--config says otherwise; only the data's own settings are replaced, see
bench/alertsim/runner.py), then each injected incident on its own copy of the normal
history, and prints:

- pages per rule on the normal days (a page: a firing notification that is not a
  repeat, on any route);
- per incident: paged in its first window, the rules that paged then, the alerts it
  produced (distinct alerts firing, and of them not folded into another), the
  notifications per day (first firings, repeats and resolved notices) and the day of
  the first resolved notice.

    nice -n 10 .venv/bin/python bench/calibrate_alerts.py                  # make calibrate-alerts
    nice -n 10 .venv/bin/python bench/calibrate_alerts.py --config bench/alertsim/rules_before.yaml
    .venv/bin/python bench/calibrate_alerts.py --generator saas --days 60 --incidents latency_spike,srm --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alertsim.generators import GENERATORS, INCIDENT_KINDS
from alertsim.runner import AFTER_DAYS, DEFAULT_CONFIG, simulate


def rules_of(config: Path) -> list[str]:
    import yaml

    data = yaml.safe_load(config.read_text()) or {}
    return [r["name"] for r in (data.get("alerts") or {}).get("rules") or []]


def first_window(incident: dict[str, Any]) -> str:
    """yes, or no with the day it was paged on (if it was)."""
    if incident["paged_first_window"]:
        return "yes"
    day = incident.get("first_page_day")
    return "**no**" if day is None else f"**no** (paged on its day {day + 1})"


def tables(results: list[dict[str, Any]], config: Path) -> str:
    gens = [r["generator"] for r in results]
    out = [
        f"Config: `{config}`; "
        + "; ".join(f"{r['generator']}: {r['days']} days of ~{r['rows']} rows, seed {r['seed']}" for r in results),
        "",
        "Pages per rule on the normal days:",
        "",
        "| rule | " + " | ".join(gens) + " |",
        "|---|" + "---:|" * len(gens),
    ]
    names = rules_of(config)
    names += sorted({k for r in results for k in r["normal"]["pages"]} - set(names))
    for name in names:
        out.append(f"| {name} | " + " | ".join(str(r["normal"]["pages"].get(name, 0)) for r in results) + " |")
    out.append("| **total** | " + " | ".join(f"**{r['normal']['pages_total']}**" for r in results) + " |")
    out.append(
        "| notifications (incl. repeats, resolved) | "
        + " | ".join(str(r["normal"]["notifications"]) for r in results)
        + " |"
    )
    out.append("| degraded runs | " + " | ".join(str(r["normal"]["degraded_windows"]) for r in results) + " |")
    out += [
        "",
        "Per incident (its own copy of the normal history; 'paged in first window': by a page the normal "
        "history does not also send that day (+ noise: rules that page then in the normal history too); "
        "'alerts': distinct alerts firing, folded ones "
        "included / not folded; 'also in the normal history': alerts the normal run fires on the same days, "
        "noise rather than the incident; 'notifications per day': first firings, repeats and resolved notices, "
        "from its first day):",
        "",
        "| generator | incident | starts on day | paged in first window | rules paged then (+ noise) | alerts | "
        "alerts after folding | of them also in the normal history | pages | notifications per day | "
        "first resolved notice |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        for i in r["incidents"]:
            resolved = "—" if i["resolved_day"] is None else f"day {i['resolved_day'] + 1}"
            out.append(
                f"| {r['generator']} | {i['kind']} ({i['days']} d) | {i['start'] + 1} | "
                f"{first_window(i)} | {', '.join(i['first_window_pages']) or '—'}"
                f"{''.join(f' (+ {n})' for n in i.get('first_window_noise', ()))} | "
                f"{i['alerts']} | {i['alerts_after_folding']} | "
                f"{'—' if i.get('alerts_also_in_normal') is None else i['alerts_also_in_normal']} | {i['pages']} | "
                f"{' '.join(map(str, i['notifications_per_day']))} | {resolved} |"
            )
    errors = sorted({e for r in results for e in r["normal"]["errors"]})
    if errors:
        out += ["", "Analyzer errors (first 10):", *[f"- {e}" for e in errors[:10]]]
    out += ["", "Seconds: " + ", ".join(f"{r['generator']} {r['seconds']:.0f}" for r in results)]
    return "\n".join(out)


def _one(kwargs: dict[str, Any]) -> dict[str, Any]:
    log = print if kwargs.pop("verbose") else None
    return simulate(**kwargs, log=log)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", choices=[*GENERATORS, "all"], default="all")
    p.add_argument("--days", type=int, default=365, help="normal days (windows) of the normal history")
    p.add_argument("--rows", type=int, default=None, help="rows on day 1 (default: runner.DEFAULT_ROWS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the config under test")
    p.add_argument("--incidents", default=",".join(INCIDENT_KINDS), help="comma-separated kinds, or 'none'")
    p.add_argument("--start", type=int, default=35, help="day index of the incidents' first day (SRM: later)")
    p.add_argument("--after", type=int, default=AFTER_DAYS, help="normal days run after each incident")
    p.add_argument("--jobs", type=int, default=1, help="generators run in parallel processes")
    p.add_argument("--workdir", type=Path, default=None, help="where the DuckDB files go (default: a temp dir)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here ('-': stdout)")
    p.add_argument("--verbose", action="store_true", help="print each window as it runs")
    a = p.parse_args(argv)
    incidents = () if a.incidents == "none" else tuple(k.strip() for k in a.incidents.split(",") if k.strip())
    unknown = set(incidents) - set(INCIDENT_KINDS)
    if unknown:
        p.error(f"unknown incidents {sorted(unknown)}; known: {', '.join(INCIDENT_KINDS)}")
    gens = list(GENERATORS) if a.generator == "all" else [a.generator]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aimon-alertsim-") as tmp:
        work = (a.workdir or Path(tmp)).resolve()
        jobs = [
            {
                "generator": g,
                "days": a.days,
                "rows": a.rows,
                "seed": a.seed,
                "config": a.config.resolve(),
                "incidents": incidents,
                "start": a.start,
                "after": a.after,
                "workdir": work,
                "verbose": a.verbose,
            }
            for g in gens
        ]
        if a.jobs > 1 and len(jobs) > 1:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(a.jobs, len(jobs)), mp_context=ctx) as pool:
                results = list(pool.map(_one, jobs))
        else:
            results = [_one(j) for j in jobs]
    text = tables(results, a.config)
    print(text)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    if a.json is not None:
        doc = json.dumps({"results": results, "wall_seconds": round(time.perf_counter() - t0, 1)}, indent=1)
        if str(a.json) == "-":
            print(doc)
        else:
            a.json.write_text(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

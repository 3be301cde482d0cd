"""The Grafana dashboards, checked as far as they can be without Grafana (it cannot run
on these machines): every dashboard validates against the schema of the schemaVersion
it declares, and after a live run of the demo data pushed into a real Pushgateway and
scraped by a real Prometheus, every template variable resolves from Prometheus and
every panel query, with the variables substituted the way Grafana's Prometheus
datasource substitutes them, returns data."""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aimon.demo import seed_duckdb
from aimon.flows.monitor import monitor_window
from aimon.windows import last_complete_window
from tests import promstack
from tests.promstack import Server, query, query_range, wait_for

REPO = promstack.REPO
DASHBOARDS = sorted((promstack.DEPLOY / "grafana" / "dashboards").glob("*.json"))
SCHEMAS = Path(__file__).parent / "data"

# Panel queries allowed to return nothing after the test's live run, as (dashboard,
# panel title, refId, variable setting), with the reason. Keep it short: a query missing
# data for any other reason is a dashboard bug.
NO_DATA_EXPECTED: dict[tuple[str, str, str, str], str] = {
    ("aimon.json", "Errors by type", "A", "model=mistral-large"): (
        "llm_errors has a series per error type that occurred; the demo's new model takes 2% of "
        "the test day's 1500 requests (about 30) and none of them failed"
    ),
}

# The dashboard time range is now-14d..now; Grafana picks $__interval from the range and
# the panel's width (about 1000 points): 14 d / 1008 = 20 m, which also divides the range,
# so the last step of a range query falls at `now`, right after the push.
RANGE_SECONDS = 14 * 86400
STEP = "20m"
BUILTINS = {
    "__interval": STEP,
    "__interval_ms": str(20 * 60 * 1000),
    "__rate_interval": STEP,
    "__range": "14d",
    "__range_s": str(RANGE_SECONDS),
    "__range_ms": str(RANGE_SECONDS * 1000),
}


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries, rows' nested panels included."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


# -- schema ---------------------------------------------------------------------------


def schema_problems(dashboard: dict[str, Any]) -> list[str]:
    """What is wrong with a dashboard: against the JSON schema of the schemaVersion it
    declares (tests/data/grafana-dashboard-v<N>.schema.json), then what a schema cannot
    say (unique ids and refIds, panels inside the 24-column grid and not overlapping,
    every $variable defined)."""
    version = dashboard.get("schemaVersion")
    path = SCHEMAS / f"grafana-dashboard-v{version}.schema.json"
    if not path.is_file():
        known = sorted(p.name for p in SCHEMAS.glob("grafana-dashboard-v*.schema.json"))
        return [f"no schema for schemaVersion {version!r} (have {known}): add one beside them"]
    validator = jsonschema.Draft7Validator(json.loads(path.read_text()))
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
        for e in sorted(validator.iter_errors(dashboard), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        return problems
    every = [*dashboard["panels"], *[c for p in dashboard["panels"] for c in p.get("panels", [])]]
    ids = [p["id"] for p in every]
    problems += [f"panel id {i} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    cells: dict[tuple[int, int], str] = {}
    for p in every:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            problems.append(f"panel {p['title']!r} runs past the grid's 24 columns")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells and cells[(x, y)] != p["title"]:
                    problems.append(f"panel {p['title']!r} overlaps {cells[(x, y)]!r}")
                    break
                cells[(x, y)] = p["title"]
            else:
                continue
            break
        refs = [t["refId"] for t in p.get("targets", [])]
        if len(refs) != len(set(refs)):
            problems.append(f"panel {p['title']!r} repeats a refId: {refs}")
    names = {v["name"] for v in dashboard["templating"]["list"]}
    for p in panels(dashboard):
        for t in p["targets"]:
            for used in variable_refs(t["expr"]) - names - set(BUILTINS):
                problems.append(f"panel {p['title']!r} uses ${used}, which no variable defines")
    return problems


def variable_refs(text: str) -> set[str]:
    return {a or b or c for a, b, c in re.findall(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]", text)}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_validates_against_the_schema_of_its_schema_version(path: Path) -> None:
    assert schema_problems(load(path)) == []


def test_the_schema_check_catches_broken_dashboards() -> None:
    good = load(DASHBOARDS[0])
    first = next(i for i, p in enumerate(good["panels"]) if p["type"] != "row")

    def broken(change: Any) -> list[str]:
        d = copy.deepcopy(good)
        change(d)
        return schema_problems(d)

    def panel(d: dict[str, Any]) -> dict[str, Any]:
        return d["panels"][first]

    cases = [
        (lambda d: panel(d).pop("gridPos"), "'gridPos' is a required property"),
        (lambda d: d["templating"]["list"][0].pop("name"), "'name' is a required property"),
        (lambda d: d.pop("title"), "'title' is a required property"),
        (lambda d: d.update(styel="dark"), "'styel' was unexpected"),
        (lambda d: panel(d)["gridPos"].update(x=24), "24 is greater than the maximum"),
        (lambda d: d["templating"]["list"][0].update(type="bogus"), "'bogus' is not one of"),
        (lambda d: panel(d).update(id=d["panels"][0]["id"]), "is used twice"),
        (lambda d: panel(d)["gridPos"].update(y=0), "overlaps"),
        (lambda d: panel(d)["targets"][0].update(expr='up{job="$nope"}'), "uses $nope, which no variable defines"),
    ]
    for change, message in cases:
        assert any(message in p for p in broken(change)), message
    assert broken(lambda d: d.update(schemaVersion=41)) == [
        "no schema for schemaVersion 41 (have ['grafana-dashboard-v39.schema.json']): add one beside them"
    ]


# -- variables, the way Grafana's Prometheus datasource resolves and substitutes them --


@dataclass(frozen=True)
class Choice:
    """One selection of a variable: the values picked (or All)."""

    values: tuple[str, ...]
    all: bool = False


def resolve_variable(prom: Server, var: dict[str, Any], chosen: dict[str, str]) -> list[str]:
    """The values a variable offers. Query variables run their query against Prometheus
    (with the variables before it substituted), as Grafana does."""
    kind = var["type"]
    if kind == "custom":
        return [v.strip() for v in re.split(r"(?<!\\),", var["query"]) if v.strip()]
    if kind == "constant" or kind == "textbox":
        return [var["query"]]
    if kind == "interval":
        return [v.strip() for v in var["query"].split(",") if v.strip()]
    assert kind == "query", f"variable {var['name']}: type {kind} is not checked here; add it"
    q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
    q = substitute(q, chosen)
    if m := re.fullmatch(r"label_values\((.+),\s*(\w+)\s*\)", q.strip()):
        resp = prom.get(f"/api/v1/label/{m.group(2)}/values", **{"match[]": m.group(1)})
        values = list(resp["data"])
    elif m := re.fullmatch(r"label_values\(\s*(\w+)\s*\)", q.strip()):
        values = list(prom.get(f"/api/v1/label/{m.group(1)}/values")["data"])
    elif m := re.fullmatch(r"query_result\((.+)\)", q.strip()):
        values = [
            "{}{{{}}} {} {}".format(
                r["metric"].get("__name__", ""),
                ",".join(f'{k}="{v}"' for k, v in r["metric"].items() if k != "__name__"),
                r["value"][1],
                int(float(r["value"][0]) * 1000),
            )
            for r in query(prom, m.group(1))
        ]
    else:
        pytest.fail(f"variable {var['name']}: query {q!r} is not label_values(...) or query_result(...)")
    if var.get("regex"):
        rx = re.compile(var["regex"].strip("/"))
        values = [(m.group(1) if m.groups() else m.group(0)) for v in values if (m := rx.search(v))]
    return sorted(set(values)) if var.get("sort", 0) else list(dict.fromkeys(values))


def regex_escape(value: str) -> str:
    # Grafana's prometheusSpecialRegexEscape: a value put into =~ must match literally.
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value.replace("\\", "\\\\\\\\"))


def formatted(var: dict[str, Any], choice: Choice) -> str:
    if choice.all:
        if var.get("allValue") is not None:
            return str(var["allValue"])
        choice = Choice(choice.values)
    if not var.get("multi") and not var.get("includeAll"):
        return choice.values[0].replace("\\", "\\\\").replace("'", "\\\\'")
    escaped = [regex_escape(v) for v in choice.values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        every = {**BUILTINS, **values}
        return every[name] if name in every else m.group(0)

    return re.sub(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]", one, expr)


def test_substitution_follows_grafana() -> None:
    multi = {"name": "model", "multi": True, "includeAll": True, "allValue": ".*"}
    assert formatted(multi, Choice(("a", "b"), all=True)) == ".*"
    assert formatted(multi, Choice(("gpt-4o.1",))) == "gpt-4o\\\\.1"
    assert formatted(multi, Choice(("a", "b"))) == "(a|b)"
    assert formatted({"name": "g"}, Choice(("daily",))) == "daily"
    s = 'rate(x{m=~"$model", g="${granularity}", h="[[granularity]]"}[$__rate_interval]) $unknown'
    assert substitute(s, {"model": "(a|b)", "granularity": "daily"}) == (
        'rate(x{m=~"(a|b)", g="daily", h="daily"}[20m]) $unknown'
    )
    assert variable_refs(s) == {"model", "granularity", "__rate_interval", "unknown"}


# -- the live check -------------------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    gateway = promstack.start_pushgateway(tmp_path)
    try:
        config = promstack.prometheus_config(tmp_path, pushgateway=gateway)
        prom = promstack.start_prometheus(tmp_path, config, tmp_path / "prom-data")
        try:
            yield gateway, prom
        finally:
            prom.stop()
    finally:
        gateway.stop()


def live_run(tmp_path: Path, gateway: Server) -> None:
    """The demo's data (incidents on the last day) and the shipped config, for the last
    complete day: a live window, so the run pushes."""
    window = last_complete_window("daily")
    wh = tmp_path / "wh.duckdb"
    seed_duckdb(wh, days=8, rows_per_day=1500, end=window.start.date())
    cfg = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    cfg["warehouse"]["url"] = f"duckdb:///{wh}"
    cfg["pushgateway"] = {"url": gateway.url, "job": "aimon"}
    # Fewer permutations than shipped: the MMD's p-value is not what the dashboard tests.
    cfg["drift"]["embeddings"]["permutations"] = 50
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    summary = monitor_window(granularity="daily", config_path=str(path), notify=False)
    assert summary.status == "success", (summary.outcomes, summary.notes)
    assert summary.live and any(n.startswith("pushed ") for n in summary.notes), summary.notes


def has_data(result: list[dict[str, Any]], instant: bool) -> bool:
    samples = [r["value"] for r in result] if instant else [v for r in result for v in r["values"]]
    return any(math.isfinite(float(v[1])) for v in samples)


def run_target(prom: Server, target: dict[str, Any], expr: str, now: float) -> list[dict[str, Any]]:
    if target.get("instant") and not target.get("range", False):
        return query(prom, expr, time=now)
    return query_range(prom, expr, now - RANGE_SECONDS, now, STEP)


def selections(prom: Server, dashboard: dict[str, Any]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The variable settings to check every panel under: the dashboard's defaults (as it
    opens), then each value every variable offers, one variable at a time. Also every
    variable that offers no value."""
    defaults: dict[str, str] = {}
    offered: dict[str, list[str]] = {}
    empty = []
    variables = dashboard["templating"]["list"]
    for var in variables:
        values = resolve_variable(prom, var, defaults)
        offered[var["name"]] = values
        if not values:
            empty.append(f"${var['name']}: its query offers no value")
            continue
        current = var.get("current", {}).get("value")
        current = current if isinstance(current, list) else [current]
        if current == ["$__all"]:
            defaults[var["name"]] = formatted(var, Choice(tuple(values), all=True))
        else:
            if not set(current) <= set(values):
                empty.append(f"${var['name']}: its saved value {current} is not among {values}")
            picked = [v for v in current if v in values] or values[:1]
            defaults[var["name"]] = formatted(var, Choice(tuple(picked)))
    settings = {"defaults": defaults}
    for var in variables:
        for value in offered[var["name"]]:
            one = {**defaults, var["name"]: formatted(var, Choice((value,)))}
            if one not in settings.values():
                settings[f"{var['name']}={value}"] = one
    return settings, empty


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_after_a_live_push_every_variable_resolves_and_every_panel_query_returns_data(
    tmp_path: Path, stack: tuple[Server, Server]
) -> None:
    gateway, prom = stack
    live_run(tmp_path, gateway)
    # The first scrape, the recording rules and the alert rules after it.
    wait_for(lambda: query(prom, 'monitoring_run_success{job="aimon"}'), "the first scrape")
    wait_for(lambda: query(prom, 'aimon:model_f1:median_7d{job="aimon"}'), "the recording rules")
    wait_for(lambda: query(prom, 'ALERTS{alertstate="firing"}'), "an alert to fire")
    time.sleep(1.5)  # one more rule evaluation, so every rule group has seen the push

    problems: list[str] = []
    exempted: set[tuple[str, str, str, str]] = set()
    checked = 0
    for path in DASHBOARDS:
        dashboard = load(path)
        settings, empty = selections(prom, dashboard)
        problems += [f"{path.name}: {e}" for e in empty]
        now = time.time()
        for p in panels(dashboard):
            for t in p["targets"]:
                legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")))
                for setting, values in settings.items():
                    expr = substitute(t["expr"], values)
                    result = run_target(prom, t, expr, now)
                    checked += 1
                    where = f"{path.name}: panel {p['title']!r} {t['refId']} ({setting}) {expr}"
                    exempt = (path.name, p["title"], t["refId"], setting)
                    if exempt in NO_DATA_EXPECTED:
                        exempted.add(exempt)
                        continue
                    if not has_data(result, bool(t.get("instant"))):
                        problems.append(f"{where}: no data")
                        continue
                    # A legend names labels the series carry, or it reads blank in Grafana.
                    missing = {k for r in result for k in legend if k not in r["metric"]}
                    if missing:
                        problems.append(f"{where}: legend {t['legendFormat']!r} names absent labels {missing}")
    assert not problems, "\n".join(problems)
    never = set(NO_DATA_EXPECTED) - exempted
    assert not never, f"NO_DATA_EXPECTED lists queries that never ran: {never}"
    assert checked > 50

"""deployments/: the names the rules and the dashboard use are aimon's, the dashboard
is wired to its provisioned datasource, and docker-compose mounts what the tests run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from aimon.catalogue import METRICS, PROMETHEUS_OWN
from aimon.config import parse_config

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deployments"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "aimon.json"
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))

# PromQL words that look like names but are not series.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}
BUILTIN_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}


def promql_names(expr: str) -> set[str]:
    """The series names an expression selects (a small lexer, enough for our rules:
    strings, label matchers, ranges and grouping clauses are removed first)."""
    # Grafana's label_values(series, label): keep the series selector, drop the label.
    s = re.sub(r"label_values\((.*),\s*\w+\s*\)", r"\1", expr)
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def rules() -> list[dict[str, Any]]:
    return [r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    d = dashboard()
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            exprs.append(v["query"]["query"] if isinstance(v["query"], dict) else v["query"])
    return exprs


def recorded() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def test_the_name_extractor_finds_series_and_only_series() -> None:
    assert promql_names('llm_error_rate{job="aimon", model!="__all__"} > 0.05 and llm_requests >= 50') == {
        "llm_error_rate",
        "llm_requests",
    }
    assert promql_names("quantile_over_time(0.5, model_f1{a='x'}[7d] offset 1d) * 0.9") == {"model_f1"}
    assert promql_names('sum by (error_type) (last_over_time(llm_errors{m=~"$model"}[$lookback]))') == {"llm_errors"}
    assert promql_names("x > on(granularity) group_left() 2 * aimon:window:seconds or vector(1e3)") == {
        "x",
        "aimon:window:seconds",
    }
    assert promql_names('label_values(llm_requests{job="aimon", g="$g"}, model)') == {"llm_requests"}
    assert promql_names("time() - monitoring_last_success_timestamp_seconds > 2 * 86400") == {
        "monitoring_last_success_timestamp_seconds"
    }


def test_rules_and_dashboard_use_only_names_aimon_emits() -> None:
    known = set(METRICS) | set(PROMETHEUS_OWN) | BUILTIN_SERIES | recorded()
    used: dict[str, set[str]] = {}
    for r in rules():
        used[r.get("alert") or r["record"]] = promql_names(r["expr"])
    for i, e in enumerate(dashboard_exprs()):
        used[f"dashboard query {i}: {e[:60]}"] = promql_names(e)
    unknown = {where: names - known for where, names in used.items() if names - known}
    assert not unknown, "names no aimon analyzer emits (see aimon/catalogue.py)"
    # The rules and the dashboard between them cover the catalogue's main areas.
    everything = set().union(*used.values())
    for name in ("llm_latency_seconds", "llm_error_rate", "llm_budget_used_ratio", "data_drift_detected",
                 "embedding_drift_detected", "ab_srm_p_value", "model_f1", "monitoring_last_success_timestamp_seconds",
                 "push_time_seconds", "push_failure_time_seconds"):  # fmt: skip
        assert name in everything, name


def test_a_misspelled_name_would_be_caught() -> None:
    known = set(METRICS) | set(PROMETHEUS_OWN)
    assert promql_names('llm_eror_rate{job="aimon"} > 0.05') - known == {"llm_eror_rate"}


def test_dashboard_is_wired_to_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    d = dashboard()
    assert d["uid"] == "aimon"
    panels = [p for p in d["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in d["panels"]}) == len(d["panels"])
    for p in panels:
        assert p["datasource"]["uid"] == uid, p["title"]
        assert p["targets"], p["title"]
        assert all(t["datasource"]["uid"] == uid and t["expr"] for t in p["targets"]), p["title"]
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert rows == ["Operations", "Cost and budget", "Drift", "Quality", "A/B experiments", "Run health"]
    variables = {v["name"] for v in d["templating"]["list"]}
    used = {m for e in dashboard_exprs() for m in re.findall(r"\$(\w+)", e)}
    assert used <= variables
    prov = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "aimon.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/aimon"


def test_compose_mounts_the_files_the_tests_run() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "prometheus",
        "pushgateway",
        "alertmanager",
        "grafana",
        "postgres",
        "prefect-server",
        "prefect-worker",
    } <= set(services)
    mounted = {}
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src, dst = vol.split(":")[:2]
            if src.startswith("."):
                path = (DEPLOY / src).resolve()
                assert path.exists(), f"{name} mounts {src}, which does not exist"
                mounted[dst] = path
    # Prometheus runs the same config, rules and targets the integration tests use.
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert mounted["/etc/prometheus"] == (DEPLOY / "prometheus").resolve()
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert "pushgateway:9091" in targets
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert next(j for j in prom["scrape_configs"] if j["job_name"] == "pushgateway")["honor_labels"] is True
    assert "--persistence.file=/data/pushgateway.db" in services["pushgateway"]["command"]
    assert mounted["/etc/alertmanager/alertmanager.yml"] == (DEPLOY / "alertmanager" / "alertmanager.yml").resolve()
    assert mounted["/var/lib/grafana/dashboards/aimon"] == (DEPLOY / "grafana" / "dashboards").resolve()
    # The worker's aimon config is valid and pushes to the compose Pushgateway.
    cfg = parse_config(yaml.safe_load(mounted["/app/configs/monitoring.yaml"].read_text()))
    assert cfg.pushgateway.url == "http://pushgateway:9091"
    assert cfg.warehouse.url.startswith("postgresql+psycopg://") and "@postgres:5432/" in cfg.warehouse.url

"""OpenSLO v1 as the SLO input format (aimon.config.openslo, `aimon slo import`): the
documents of the spec's own shapes (inline indicator, indicatorRef to a kind: SLI
document, several objectives, targetPercent) become `slos:` entries that the config
accepts and that burn the same way as hand-written ones; what does not fit is refused
with the SLO's name and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aimon.cli.app import app
from aimon.config.openslo import read_openslo, slos_from_openslo
from aimon.errors import ConfigError
from tests.conftest import make_config

AVAILABILITY = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: chat-availability
  displayName: Chat availability
spec:
  description: chat answers without an error
  service: chat
  indicator:
    metadata: {name: chat-ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: aimon, spec: {sli: availability, endpoint: chat}}}
        total: {metricSource: {type: aimon, spec: {endpoint: chat}}}
  timeWindow:
    - duration: 4w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good
      target: 0.995
"""

LATENCY = """
apiVersion: openslo/v1
kind: SLI
metadata: {name: gpt4o-latency}
spec:
  thresholdMetric:
    metricSource: {type: aimon, spec: {sli: latency, model: gpt-4o}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: gpt4o-latency}
spec:
  service: chat
  indicatorRef: gpt4o-latency
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - {displayName: Fast, op: lte, value: 2.0, target: 0.95}
    - {displayName: Not slow, op: lt, value: 8, targetPercent: 99.5}
---
apiVersion: openslo/v1
kind: Service
metadata: {name: chat}
spec: {description: the chat endpoint}
"""


def test_an_availability_slo_becomes_one_entry_the_config_accepts(tmp_path: Path) -> None:
    [entry] = slos_from_openslo(yaml.safe_load_all(AVAILABILITY))
    assert entry == {
        "name": "chat-availability",
        "objective": 0.995,
        "period": "28d",
        "sli": {"type": "availability"},
        "endpoint": "chat",
        "description": "chat answers without an error",
    }
    cfg = make_config(f"duckdb:///{tmp_path / 'wh.duckdb'}", slos=[entry])
    [slo] = cfg.slos
    assert slo.error_budget == pytest.approx(0.005) and slo.period_delta.days == 28


def test_an_sli_document_and_several_objectives_give_one_latency_slo_each(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(LATENCY)
    fast, not_slow = read_openslo(path)
    assert fast == {
        "name": "gpt4o-latency-fast",
        "objective": 0.95,
        "period": "30d",
        "sli": {"type": "latency", "threshold_seconds": 2.0},
        "model": "gpt-4o",
    }
    assert not_slow["name"] == "gpt4o-latency-not-slow"
    assert not_slow["objective"] == pytest.approx(0.995) and not_slow["sli"]["threshold_seconds"] == 8.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("budgetingMethod", "Timeslices"), "SLO chat-availability: budgetingMethod 'Timeslices': aimon counts events"),
        (("timeWindow", [{"duration": "1M", "isRolling": False}]), "only a rolling window is supported"),
        (("timeWindow", [{"duration": "2h", "isRolling": True}]), "spec.timeWindow.duration '2h'"),
        (("objectives", [{"target": 1.2}]), "SLO chat-availability: objective: Input should be less than 1"),
        (("objectives", []), "spec.objectives: give at least one objective"),
    ],
)
def test_what_does_not_fit_is_refused_naming_the_slo_and_the_key(change: tuple[str, object], message: str) -> None:
    doc = yaml.safe_load(AVAILABILITY)
    doc["spec"][change[0]] = change[1]
    with pytest.raises(ConfigError, match="OpenSLO") as err:
        slos_from_openslo([doc])
    assert message in str(err.value)


def test_a_prometheus_source_is_refused_aimon_computes_its_own_sli() -> None:
    doc = yaml.safe_load(AVAILABILITY)
    doc["spec"]["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"] = {
        "type": "Prometheus",
        "spec": {"query": 'sum(rate(http_requests_total{code!~"5.."}[5m]))'},
    }
    with pytest.raises(ConfigError, match=r"ratioMetric.good.metricSource.type 'Prometheus'.*type: aimon"):
        slos_from_openslo([doc])


def test_slo_import_prints_a_slos_section_and_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(AVAILABILITY + "---\n" + LATENCY)
    res = CliRunner().invoke(app, ["slo", "import", str(path)])
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(res.stdout)
    assert [s["name"] for s in data["slos"]] == ["chat-availability", "gpt4o-latency-fast", "gpt4o-latency-not-slow"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(AVAILABILITY.replace("Occurrences", "RatioTimeslices"))
    res = CliRunner().invoke(app, ["slo", "import", str(bad)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("run failed: openslo import: OpenSLO")
    assert "Traceback" not in res.output

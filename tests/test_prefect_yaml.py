"""Every prefect.yaml entrypoint imports, is a flow, and accepts its parameters."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

REPO = Path(__file__).resolve().parent.parent


def test_entrypoints_import_and_take_their_parameters() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert spec["deployments"], "no deployments"
    for dep in spec["deployments"]:
        flow = _flow(dep)
        assert isinstance(flow, Flow), dep["name"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(dep.get("parameters", {})) <= accepted, (dep["name"], dep.get("parameters"))
        assert (REPO / dep["parameters"]["config_path"]).is_file()


def _flow(dep: dict) -> Flow:
    # Loaded the way a worker loads it: by file path, with Prefect's own loader.
    path, _, name = dep["entrypoint"].partition(":")
    flow = load_flow_from_entrypoint(f"{REPO / path}:{name}")
    assert isinstance(flow, Flow)
    return flow


def test_parameters_validate_against_the_flow_signatures() -> None:
    from aimon.config import load_config
    from aimon.store.runs import REDO_MODES

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deps = {d["name"]: d for d in spec["deployments"]}
    assert {"aimon-daily", "aimon-hourly", "aimon-backfill"} <= set(deps)
    for dep in deps.values():
        assert dep["work_pool"]["name"] == "aimon-process"
        params = dict(dep["parameters"])
        load_config(REPO / params["config_path"])  # the config it names is valid
        flow = _flow(dep)
        required = {n for n, p in inspect.signature(flow.fn).parameters.items() if p.default is inspect.Parameter.empty}
        if dep["name"] == "aimon-backfill":
            # Triggered by hand: no schedule, and the range is given at each run.
            assert not dep.get("schedules")
            assert required == {"start", "end"}
            assert params["redo"] in REDO_MODES and params["order"] in ("oldest", "newest")
            assert params["notify"] is False  # historical windows record alerts, never send them
            params |= {"start": "2026-11-01", "end": "2026-11-07"}
        else:
            assert dep["schedules"] and params["scheduled"] is True
            assert not required
        validated = flow.validate_parameters(params)
        assert set(validated) >= set(params)
    # Prefect's own schema check rejects a wrong type, so the validation above is real.
    with pytest.raises(Exception, match="start"):
        _flow(deps["aimon-backfill"]).validate_parameters({"start": "not a date", "end": "2026-11-07"})

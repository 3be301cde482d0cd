"""Every prefect.yaml entrypoint imports, is a flow, and accepts its parameters."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import yaml
from prefect import Flow

REPO = Path(__file__).resolve().parent.parent


def test_entrypoints_import_and_take_their_parameters() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert spec["deployments"], "no deployments"
    for dep in spec["deployments"]:
        path, _, name = dep["entrypoint"].partition(":")
        mod_spec = importlib.util.spec_from_file_location(f"_entry_{dep['name'].replace('-', '_')}", REPO / path)
        assert mod_spec and mod_spec.loader
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        flow = getattr(module, name)
        assert isinstance(flow, Flow), dep["name"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(dep.get("parameters", {})) <= accepted, (dep["name"], dep.get("parameters"))
        assert (REPO / dep["parameters"]["config_path"]).is_file()

"""The wheel installs one top-level name, aimon, and carries every module of the tree
and the default config.

flows/ and tasks/ live at the top of the repository but are the packages aimon.flows and
aimon.tasks (pyproject.toml, package-dir): a module left out of the package list, or a
stray top-level package, would only show up on a user's machine.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAPPED = {"aimon": "aimon", "flows": "aimon/flows", "tasks": "aimon/tasks"}


@pytest.mark.slow
def test_wheel_has_one_top_level_name_and_every_module(tmp_path: Path) -> None:
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip_wheel, "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("aimon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"aimon"}
    expected = {
        f"{prefix}/{path.relative_to(REPO / folder).as_posix()}"
        for folder, prefix in MAPPED.items()
        for path in (REPO / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected - set(names) == set(), "modules missing from the wheel (add their package to pyproject.toml)"
    # The default config ships too (the data package aimon.configs): `aimon` runs from any
    # directory, and `aimon init` copies it.
    assert "aimon/configs/monitoring.yaml" in names

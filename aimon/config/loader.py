"""Reading the YAML file into a `Config`: where the file is, and what its errors say.

Lookup order: an explicit path (``--config``), then ``AIMON_CONFIG``, then
``configs/monitoring.yaml`` in the working directory, then the default config shipped in
the package (``aimon.configs``, the same file), so aimon runs from any directory; `aimon
init` writes a copy to edit. Unknown keys are errors naming the key and the file,
because a typo'd key that is silently ignored is a monitor that silently does less.
``AIMON_WAREHOUSE_URL`` overrides ``warehouse.url`` (so a URL with a password need not
be in the file).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aimon.config.root import Config
from aimon.errors import ConfigError

DEFAULT_CONFIG = Path("configs/monitoring.yaml")


def packaged_config() -> Path:
    """The default config shipped in the package (configs/ is the data package
    aimon.configs): an installed package is a directory, so this is a real file."""
    return Path(str(resources.files("aimon.configs").joinpath("monitoring.yaml")))


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    if path:
        return Path(path)
    env = os.environ.get("AIMON_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else packaged_config()


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p != "source")
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}' in {source}")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{loc}' in {source}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"bad value for '{loc}' in {source}: {msg} (got {e.get('input')!r})")
    return "; ".join(lines)


def parse_config(data: dict[str, Any], source: str = "<memory>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    data = dict(data)
    if "source" in data:
        raise ConfigError(f"unknown key 'source' in {source}")
    env_url = os.environ.get("AIMON_WAREHOUSE_URL")
    if env_url:
        data["warehouse"] = {**(data.get("warehouse") or {}), "url": env_url}
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    p = resolve_path(path)
    if not p.is_file():
        raise ConfigError(
            f"config file {p} not found: pass --config PATH, set AIMON_CONFIG, or write a starter config "
            "with `aimon init`"
        )
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{p} is not valid YAML: {err}") from None
    return parse_config(data, source=str(p))

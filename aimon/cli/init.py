"""`aimon init [DIR]`: write the shipped default config where `aimon` looks for it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aimon.cli.common import console, fail
from aimon.config.loader import DEFAULT_CONFIG, packaged_config

# What a new user edits first, in the order a run needs them.
TO_EDIT = (
    ("warehouse.url", "your warehouse (any SQLAlchemy URL; or set AIMON_WAREHOUSE_URL, so no password is in the file)"),
    ("warehouse.interactions_table", "the table of logged interactions (and feedback_table, or remove it)"),
    ("warehouse.columns", "contract name -> your column, where the names differ (e.g. timestamp: created_at)"),
    ("pricing", "USD per 1M tokens for your models (models without a price get no cost figures)"),
    ("drift.features, experiments", "the feature columns to watch for drift, your A/B experiments"),
    ("alerts.channels, alerts.routes", "where notifications go (email, Slack); secrets by env var name"),
)


def init(
    directory: Annotated[Path, typer.Argument(help="the project directory (default: the current one)")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing config")] = False,
) -> None:
    """Write a starter config (the shipped default) to DIR/configs/monitoring.yaml, where
    `aimon` finds it when run from DIR, and say what to edit."""
    target = directory / DEFAULT_CONFIG
    if target.exists() and not force:
        fail(f"{target} exists", "edit it, or pass --force to replace it with the starter config", 2)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(packaged_config().read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {target}", f"{err.strerror or err}: pick a directory you can write to", 1)
    console.print(f"wrote {target} (the default config; every key: docs/reference/config.md)")
    console.print("edit:")
    for key, what in TO_EDIT:
        console.print(f"  {key}: {what}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    console.print(
        f"then: {where}aimon config check   (which analyzers will run, and why others are skipped)\n"
        f"      {where}aimon demo           (or try it on synthetic data first: no warehouse needed)"
    )

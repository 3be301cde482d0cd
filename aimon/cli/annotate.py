"""`aimon annotate deploy | list`: record planned changes (deployments) in the store.

A recorded deployment starts the post-deployment check (aimon.tasks.deploy) for
`deployments.check_windows` windows and marks the rollout (deployment_rollout_active)
for `deployments.rollout_windows`, so spike rules hold off during a planned rollout.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from aimon.cli.common import ConfigOpt, Format, FormatOpt, console, fail, load, login, output, to_utc
from aimon.store.deployments import Deployment, DeploymentStore
from aimon.store.schema import require_store, utcnow

annotate_app = typer.Typer(no_args_is_help=True, help="Record deployments (planned changes) and list them.")


def parse_at(text: str | None, timezone: str, now: dt.datetime) -> dt.datetime:
    """`--at`: an ISO date or timestamp, local time in windows.timezone unless it has an
    offset; None: now. Returns naive UTC."""
    if text is None:
        return now
    try:
        ts = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or timestamp (e.g. 2026-12-01 or 2026-12-01T09:30)") from None
    return to_utc(ts, timezone)


def _doc(d: Deployment) -> dict[str, object]:
    return {
        "deployment_id": d.deployment_id,
        "model": d.model,
        "endpoint": d.endpoint,
        "deployed_at": d.deployed_at,
        "replaces": d.replaces,
        "note": d.note,
        "source": d.source,
        "created_by": d.created_by,
        "created_at": d.created_at,
    }


@annotate_app.command("deploy")
def deploy(
    model: Annotated[str, typer.Option(help="the model that went live (the interactions' model value)")],
    config: ConfigOpt = None,
    endpoint: Annotated[str | None, typer.Option(help="only on this endpoint (default: every endpoint)")] = None,
    at: Annotated[
        str | None, typer.Option(help="when (ISO; windows.timezone unless an offset is given); default: now")
    ] = None,
    replaces: Annotated[
        str | None, typer.Option(help="the model it replaces: the check's baseline (default: the other models)")
    ] = None,
    note: Annotated[str | None, typer.Option(help="what changed, e.g. a ticket or a prompt version")] = None,
    author: Annotated[str | None, typer.Option(help="who (default: the login name)")] = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Record a deployment of MODEL: the post-deployment check compares it with its
    baseline for deployments.check_windows windows, and spike rules with
    `unless: deployment_rollout_active` hold off for deployments.rollout_windows."""
    with output(fmt) as out:
        cfg = load(config)
        if not model.strip():
            fail("bad --model", "give the model's name as the interactions table holds it", 2)
        if replaces is not None and replaces == model:
            fail("bad --replaces", f"{model!r} cannot replace itself", 2)
        try:
            when = parse_at(at, cfg.windows.timezone, utcnow())
        except ValueError as err:
            fail("bad --at", str(err), 2)
        d = DeploymentStore(cfg).add(
            model, when, endpoint=endpoint, replaces=replaces, note=note, created_by=author or login()
        )
        if out.json:
            out.emit({"status": "recorded", "deployment": _doc(d)})
            return
        where = f" on /{endpoint}" if endpoint else ""
        instead = f", replacing {replaces}" if replaces else ""
        console.print(f"deployment {d.deployment_id}: {model}{where} at {when:%Y-%m-%d %H:%M} UTC{instead}")


@annotate_app.command("list")
def list_deployments(
    config: ConfigOpt = None,
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Recorded deployments, oldest first: annotated and detected in the data."""
    with output(fmt) as out:
        cfg = load(config)
        require_store(cfg)
        deps = DeploymentStore(cfg).find(model=model)
        if out.json:
            out.emit({"deployments": [_doc(d) for d in deps]})
            return
        if not deps:
            console.print("no deployments recorded (aimon annotate deploy --model M)")
            return
        t = Table(title="deployments", title_justify="left")
        for col in ("id", "deployed (UTC)", "model", "endpoint", "replaces", "source", "by", "note"):
            t.add_column(col, overflow="fold")
        for d in deps:
            t.add_row(
                d.deployment_id,
                f"{d.deployed_at:%Y-%m-%d %H:%M}",
                d.model,
                d.endpoint or "all",
                d.replaces or "-",
                d.source,
                d.created_by,
                d.note or "",
            )
        console.print(t)

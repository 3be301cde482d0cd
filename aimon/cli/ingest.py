"""`aimon ingest jsonl PATH...`: load captured interactions into the warehouse table
(aimon.capture.ingest). Idempotent on request_id: loading a file twice adds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aimon.capture.ingest import ingest_jsonl
from aimon.capture.sinks import WarehouseSink
from aimon.cli.common import ConfigOpt, Format, FormatOpt, console, fail, load, print_json
from aimon.config import Config
from aimon.errors import CaptureError

ingest_app = typer.Typer(no_args_is_help=True, help="Load captured interactions (JSONL files) into the warehouse.")


def _report(fmt: Format, target: str, report: Any, counts: tuple[str, ...]) -> None:
    if fmt == Format.json:
        doc = {k: getattr(report, k) for k in (*counts, "valid", "loaded")}
        print_json({**doc, "skipped": dict(report.skipped), "table": target})
    else:
        console.print(f"{target}: {report.summary()}", highlight=False)


def _target(cfg: Config, table: str | None) -> str:
    if table is None and cfg.warehouse.columns:
        fail(
            f"aimon ingest writes the contract's column names, and warehouse.columns maps {len(cfg.warehouse.columns)}",
            "give --table of a table in the contract's names (a view can map it for the monitor)",
            2,
        )
    return table or cfg.warehouse.interactions_table


@ingest_app.command("jsonl")
def jsonl(
    paths: Annotated[list[Path], typer.Argument(help="JSONL files (one interaction per line, contract column names)")],
    config: ConfigOpt = None,
    url: Annotated[
        str | None, typer.Option(help="warehouse SQLAlchemy URL (default: the config's warehouse.url)")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="table (default: the config's warehouse.interactions_table)")
    ] = None,
    create: Annotated[bool, typer.Option(help="create the contract table when it is missing")] = False,
    fmt: FormatOpt = Format.text,
) -> None:
    """Load JSONL files of interactions; bad lines are skipped and counted by reason."""
    cfg = load(config)
    target = _target(cfg, table)
    sink = WarehouseSink(url or cfg.warehouse.url, target, create=create)
    try:
        report = ingest_jsonl(paths, sink)
    except CaptureError as err:
        fail("ingest failed", str(err), 2)
    except Exception as err:  # the warehouse: one line, the table named
        fail(f"ingest into {target} failed", str(err).splitlines()[0])
    finally:
        sink.close()
    _report(fmt, target, report, ("files", "lines"))


def _traces(
    cfg: Config, url: str | None, table: str | None, create: bool, store_text: str | None, fmt: Format, load: Any
) -> None:
    """Run `load(sink, masker)` (a trace ingest) and print its report."""
    from aimon.capture.masking import Masker  # noqa: PLC0415

    target = _target(cfg, table)
    try:
        masker = Masker(store_text or cfg.capture.store_text, cfg.capture.mask_patterns)  # type: ignore[arg-type]
    except ValueError as err:
        fail("bad option", str(err), 2)
    sink = WarehouseSink(url or cfg.warehouse.url, target, create=create)
    try:
        report = load(sink, masker)
    except CaptureError as err:
        fail("ingest failed", str(err), 2)
    except Exception as err:
        fail(f"ingest into {target} failed", str(err).splitlines()[0])
    finally:
        sink.close()
    _report(fmt, target, report, ("spans", "unmapped"))


StoreTextOpt = Annotated[
    str | None, typer.Option(help="prompt and response text: full, masked or none (default: capture.store_text)")
]
CreateOpt = Annotated[bool, typer.Option(help="create the contract table when it is missing")]
UrlOpt = Annotated[str | None, typer.Option(help="warehouse SQLAlchemy URL (default: the config's warehouse.url)")]
TableOpt = Annotated[str | None, typer.Option(help="table (default: the config's warehouse.interactions_table)")]


@ingest_app.command("otlp")
def otlp(
    paths: Annotated[list[Path], typer.Argument(help="OTLP JSON trace exports (a request per file or per line)")],
    config: ConfigOpt = None,
    url: UrlOpt = None,
    table: TableOpt = None,
    create: CreateOpt = False,
    store_text: StoreTextOpt = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Load the LLM spans of OTLP JSON exports (GenAI conventions or OpenInference) as
    interactions; other spans are counted as not LLM calls."""
    from aimon.capture.otlp import ingest_otlp  # noqa: PLC0415

    _traces(load(config), url, table, create, store_text, fmt, lambda sink, m: ingest_otlp(paths, sink, m))


@ingest_app.command("phoenix")
def phoenix(
    phoenix_url: Annotated[str, typer.Option("--phoenix-url", help="the Phoenix server, e.g. http://127.0.0.1:6006")],
    project: Annotated[str, typer.Option(help="the Phoenix project (name or id)")] = "default",
    config: ConfigOpt = None,
    url: UrlOpt = None,
    table: TableOpt = None,
    create: CreateOpt = False,
    store_text: StoreTextOpt = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Load a Phoenix project's LLM spans (its REST API) as interactions."""
    from aimon.capture.phoenix import ingest_phoenix  # noqa: PLC0415

    _traces(
        load(config), url, table, create, store_text, fmt, lambda sink, m: ingest_phoenix(phoenix_url, project, sink, m)
    )

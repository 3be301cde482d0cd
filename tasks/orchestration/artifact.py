"""The run's markdown artifact in the Prefect UI: the window at a glance."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.records import ALL
from aimon.report import window_page_url
from aimon.tasks.orchestration.run import RunSummary
from aimon.windows import Window


def _fmt(v: float | None, spec: str = ",.4g") -> str:
    return "-" if v is None else format(v, spec)


def run_markdown(summary: RunSummary, cfg: Config | None = None) -> str:
    """The run at a glance, for the Prefect UI. Sections come from the RunSummary;
    other analyzers' notes (drift, experiments, alerts) appear under Notes, and a new
    section is one more block here. With the config, it links to the window's page of
    the HTML report (where `aimon report` writes it; built after the run with
    report.after_run)."""
    s = summary
    v = s.value
    kind = "provisional" if s.provisional else "live" if s.live else "historical"
    lines = [
        f"# {s.window.granularity} window {s.window.label}",
        "",
        f"`[{s.window.start:%Y-%m-%d %H:%M}, {s.window.end:%Y-%m-%d %H:%M})` UTC · run `{s.run_id}` · "
        f"**{s.status}** in {s.duration_seconds:.1f}s · {kind}",
        "",
    ]
    if s.error:
        lines += [f"**Error:** {s.error}", ""]
    if s.contract is not None:
        c = s.contract
        lines += [f"**Rows:** {c.accepted:,} accepted, {c.rejected_total:,} rejected", ""]
        rejected = {k: n for k, n in c.rejected.items() if n}
        if rejected:
            lines += ["| rejected because | rows |", "|---|---:|"]
            lines += [f"| {k} | {n:,} |" for k, n in rejected.items()]
            lines.append("")
    lines += ["## Key figures", "", "| figure | value |", "|---|---:|"]
    everything = {"model": ALL, "endpoint": ALL}
    rate = v("llm_error_rate", **everything)
    for label, value in (
        ("requests", _fmt(v("llm_requests", **everything), ",.0f")),
        ("error rate", "-" if rate is None else f"{rate:.2%}"),
        ("latency p50 s", _fmt(v("llm_latency_seconds", quantile="0.5", **everything), ".3f")),
        ("latency p95 s", _fmt(v("llm_latency_seconds", quantile="0.95", **everything), ".3f")),
        ("latency p99 s", _fmt(v("llm_latency_seconds", quantile="0.99", **everything), ".3f")),
        ("tokens in", _fmt(v("llm_tokens", type="input", **everything), ",.0f")),
        ("tokens out", _fmt(v("llm_tokens", type="output", **everything), ",.0f")),
        ("cost USD", _fmt(v("llm_cost_usd", **everything), ",.2f")),
    ):
        lines.append(f"| {label} | {value} |")
    lines.append("")
    if s.outcomes:
        lines += ["## Analyzers", "", "| analyzer | status | seconds | figures |", "|---|---|---:|---:|"]
        for o in s.outcomes:
            n = len(o.result.records) if o.result is not None else 0
            status = f"error: {o.error}" if o.error else "ok"
            lines.append(f"| {o.name} | {status.replace('|', '/')} | {o.seconds:.2f} | {n} |")
        lines.append("")
    if s.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in s.notes] + [""]
    if s.stored_in:
        lines.append(f"Figures stored in {s.stored_in}.")
    if cfg is not None:
        built = "rebuilt after this run" if cfg.report.after_run else "built by `aimon report`"
        lines += ["", f"Report: [this window's page]({window_page_url(cfg, s.window)}) ({built})."]
    return "\n".join(lines)


def artifact_key(window: Window) -> str:
    # Keys: lowercase letters, digits and dashes; one key per granularity keeps the
    # latest window's artifact easy to find, with every run's version in its history.
    return f"aimon-{window.granularity}-run"


@task(name="run-artifact", cache_policy=NO_CACHE, timeout_seconds=60)
def run_artifact_task(summary: RunSummary, cfg: Config | None = None) -> None:
    create_markdown_artifact(
        markdown=run_markdown(summary, cfg),
        key=artifact_key(summary.window),
        description=f"aimon {summary.window} ({summary.status})",
    )

"""Prometheus recording and alert rules for the config's SLOs (`aimon slo rules`).

The same checks as the analyzer (aimon.config.slos.burn_checks), written over the live
series a run pushes: `slo_events` and `slo_good_events`, one value per window, held by
the Pushgateway until the next push. Over a span, sum_over_time(good) / sum_over_time(
events) weighs each window by how long it was current, i.e. evenly for regular runs:
the ratio of the span's sums, as the analyzer computes it from the metrics table.

One group per SLO: the error ratio per span is recorded first and the alerts read it in
the same group, where Prometheus evaluates rules in order at one timestamp (so an alert
never sees a recorded value one evaluation late). The error budget over the whole
period reads weeks of samples: it is its own group, evaluated every 5 minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aimon.config import Config
from aimon.config.slos import GRANULARITY_SPAN, TIERS, BurnCheck, SLOConfig, burn_checks, span_label, spans

GRANULARITIES = ("hourly", "daily")
SEVERITY = {"page": "critical", "ticket": "warning"}  # as in rules/aimon.alerts.yml: critical pages


def _sel(job: str, slo: SLOConfig, granularity: str) -> str:
    return f'job="{job}", slo="{slo.name}", granularity="{granularity}"'


def _num(x: float) -> str:
    return f"{x:.6g}"


def _ratio_record(span: str) -> str:
    return f"slo:sli_error:ratio_rate{span}"


def _checks(slo: SLOConfig, granularity: str) -> list[BurnCheck]:
    """The analyzer's checks, less those another check of the tier implies (daily: the
    fast and slow page checks read the same 1d span, so only the lower factor counts)."""
    out: list[BurnCheck] = []
    for c in sorted(burn_checks(slo.period_delta, granularity), key=lambda c: c.factor):
        if not any(o.tier == c.tier and (o.short, o.long) == (c.short, c.long) for o in out):
            out.append(c)
    return out


def _condition(job: str, slo: SLOConfig, granularity: str, c: BurnCheck) -> str:
    sel = f'{{slo="{slo.name}", granularity="{granularity}"}}'
    bound = f"({_num(c.factor)} * {_num(slo.error_budget)})"
    parts = [f"{_ratio_record(span_label(c.long))}{sel} > {bound}"]
    if c.short != c.long:
        parts.append(f"{_ratio_record(span_label(c.short))}{sel} > {bound}")
    if slo.min_events:
        # Events in the short span: the mean pushed value times the windows it holds.
        n = round(c.short / GRANULARITY_SPAN[granularity])
        events = f"avg_over_time(slo_events{{{_sel(job, slo, granularity)}}}[{span_label(c.short)}])"
        times = f" * {n}" if n > 1 else ""
        parts.append(f"sum by (slo, granularity) ({events}){times} >= {slo.min_events}")
    return "(\n  " + "\n  and on(slo, granularity)\n  ".join(parts) + "\n)"


def _why(slo: SLOConfig, granularity: str, c: BurnCheck) -> str:
    over = span_label(c.long) + (f" and {span_label(c.short)}" if c.short != c.long else "")
    return (
        f"{granularity}: {c.row.name} burn ({c.row.budget_share:.0%} of the {slo.period} budget in "
        f"{span_label(c.row.long)} = {_num(c.factor)}x) over {over}"
    )


def slo_groups(cfg: Config) -> list[dict[str, Any]]:
    job = cfg.pushgateway.job
    groups: list[dict[str, Any]] = []
    budget_rules: list[dict[str, Any]] = []
    for slo in cfg.slos:
        rules: list[dict[str, Any]] = []
        # Every span for every granularity (a series of one granularity carries that label).
        sel = f'job="{job}", slo="{slo.name}"'
        for s in sorted({s for g in GRANULARITIES for s in spans(_checks(slo, g))}):
            r = span_label(s)
            rules.append(
                {
                    "record": _ratio_record(r),
                    "expr": f"1 - sum by (slo, granularity) (sum_over_time(slo_good_events{{{sel}}}[{r}]))\n"
                    f"  / sum by (slo, granularity) (sum_over_time(slo_events{{{sel}}}[{r}]))",
                    "labels": {"slo": slo.name},
                }
            )
        for tier in TIERS:
            mine = [(g, c) for g in GRANULARITIES for c in _checks(slo, g) if c.tier == tier]
            conds = [_condition(job, slo, g, c) for g, c in mine]
            what = slo.description or f"{slo.sli.type} SLO {slo.name}"
            rules.append(
                {
                    "alert": "AimonSLOBurnRate",
                    "expr": "\nor\n".join(conds),
                    "labels": {"severity": SEVERITY[tier], "tier": tier, "area": "slo", "slo": slo.name},
                    "annotations": {
                        "summary": f"SLO {slo.name} burns its error budget too fast ({tier})",
                        "description": (
                            f"{what}: objective {slo.objective:g} over {slo.period}. The error ratio over both "
                            "spans of a burn check of this tier is above its burn-rate factor times the error "
                            f"budget ({_num(slo.error_budget)}); in {{{{ $labels.granularity }}}} windows. "
                            "Look next: slo:sli_error:ratio_rate* and slo_burn_rate for the spans, and "
                            "llm_errors / llm_latency_seconds for the requests the SLO counts (docs: SLOs)."
                        ),
                        "burn_checks": "; ".join(_why(slo, g, c) for g, c in mine),
                    },
                }
            )
        groups.append({"name": f"aimon.slo.{slo.name}", "rules": rules})
        p = slo.period
        budget_rules.append(
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": f"1 - (1 - sum by (slo, granularity) (sum_over_time(slo_good_events{{{sel}}}[{p}]))\n"
                f"  / sum by (slo, granularity) (sum_over_time(slo_events{{{sel}}}[{p}]))) / {_num(slo.error_budget)}",
                "labels": {"slo": slo.name},
            }
        )
        budget_rules.append(
            {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})", "labels": {"slo": slo.name}}
        )
    if budget_rules:
        groups.append({"name": "aimon.slo.budgets", "interval": "5m", "rules": budget_rules})
    return groups


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def render_rules(cfg: Config) -> str:
    """The rules file for `cfg`'s SLOs, with a header saying where it came from."""
    header = (
        f"# Generated by `aimon slo rules` from {Path(cfg.source).name}: edit the slos: section and regenerate\n"
        "# (aimon slo rules > deployments/prometheus/rules/slo.yml), do not edit by hand.\n"
        "# Multiwindow, multi-burn-rate alerts (Google SRE workbook) over the pushed slo_events and\n"
        "# slo_good_events; the arithmetic: docs/slos.md. AimonSLOBurnRate{tier=page} is critical,\n"
        "# {tier=ticket} a warning.\n"
    )
    body = yaml.dump({"groups": slo_groups(cfg)}, Dumper=_Dumper, sort_keys=False, width=float("inf"))
    return header + body

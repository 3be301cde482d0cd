"""The A/B block of the run summary: one table per experiment, from the abtest
analyzer's details (plain dicts, so the report does not import the analyzer)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

STATUS_STYLE = {
    "improvement": "green",
    "regression": "red",
    "invalid": "bold red",
    "no_difference": "cyan",
    "collecting": "yellow",
}
SHORT = {
    "improvement": "better",
    "regression": "worse",
    "no_difference": "no diff.",
    "collecting": "collecting",
    "invalid": "invalid",
}


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.3g}" if a < 100 else f"{v:,.1f}"
    return f"{v:.3g}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1%}"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def experiment_table(exp: dict[str, Any]) -> Table:
    mode = "sequential, always-valid" if exp["sequential"] else "fixed-horizon"
    style = STATUS_STYLE.get(exp["status"], "")
    srm = exp.get("srm") or {}
    units = ", ".join(f"{v} {n:,}" for v, n in exp["units"].items())
    title = (
        f"experiment [bold]{exp['name']}[/bold]: [{style}]{exp['status_text']}[/{style}] "
        f"({exp['looks']} windows; {units}; SRM p = {srm.get('p_value', float('nan')):.2g})"
    )
    level = f"{1 - exp['alpha']:.0%}"
    cols = ("metric", "variant", "control", "variant mean", "lift", f"{level} interval", "p", "p adj.", "status")
    caption = f"{mode} intervals and p per comparison; p adj.: {exp['correction']} across metrics x variants"
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for col in cols:
        t.add_column(col, justify="left" if col in ("metric", "variant", "status") else "right")
    for c in exp["comparisons"]:
        ci = c.get("lift_ci")
        status = SHORT.get(c["status"], c["status"])
        if exp["status"] == "invalid":
            status = "invalid"
        st = STATUS_STYLE.get("invalid" if exp["status"] == "invalid" else c["status"], "")
        t.add_row(
            f"{c['metric']} ({'↑' if c['good'] == 'higher' else '↓'} good)",
            c["variant"],
            _num(c["mean_control"]),
            _num(c["mean_variant"]),
            _pct(c["lift"]),
            f"[{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "-",
            _p(c["p_value"]),
            _p(c["p_adjusted"]),
            f"[{st}]{status}[/{st}]",
        )
    return t


def ab_tables(details: dict[str, Any]) -> list[Table]:
    return [experiment_table(e) for e in details.get("experiments", [])]

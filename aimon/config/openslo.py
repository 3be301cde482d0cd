"""OpenSLO v1 documents as aimon `slos:` entries (`aimon slo import FILE`).

OpenSLO (openslo.com) is the vendor-neutral format for SLOs that Sloth, Pyrra and
Nobl9 read. aimon takes the part that fits what it measures, events in the
interactions table, and says which part does not:

- `kind: SLO` documents (an `SLI` document may hold the indicator, by
  `spec.indicatorRef`); `Service`, `AlertPolicy` and other kinds are skipped;
- `spec.budgetingMethod: Occurrences` (aimon counts events; `Timeslices` and
  `RatioTimeslices` judge time slices: refused, naming the SLO);
- a rolling `spec.timeWindow` of days or weeks (`28d`, `4w`; `1M` is 30 days), not
  calendar-aligned;
- the indicator's metric source `type: aimon`, its `spec` naming the SLI and the
  series: `{sli: availability}` or `{sli: latency}`, optional `model` and `endpoint`.
  A `ratioMetric` is availability unless its good source says `sli: latency`; a
  `thresholdMetric` is latency, with the objective's `op: lt|lte` and `value` (in
  seconds) as the threshold. A source of another type (a Prometheus query) is refused:
  aimon computes its own SLIs from the warehouse;
- each of `spec.objectives` (`target`, or `targetPercent` / 100) is one aimon SLO:
  named as the SLO when it is the only one, else `<name>-<objective displayName or
  its position>`.

The result is a list of `slos:` entries (plain dicts), validated by the config's own
SLOConfig, so `aimon slo import` prints only what `aimon run` accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aimon.config.slos import SLOConfig
from aimon.errors import ConfigError

_DURATION = re.compile(r"^([1-9][0-9]{0,3})([dwM])$")
_DAYS = {"d": 1, "w": 7, "M": 30}
_SLUG = re.compile(r"[^A-Za-z0-9_.\-]+")


def _fail(where: str, msg: str) -> ConfigError:
    return ConfigError(f"OpenSLO {where}: {msg}")


def _period(where: str, spec: Mapping[str, Any]) -> str:
    windows = spec.get("timeWindow") or []
    if not windows:
        return "30d"
    if len(windows) != 1 or not isinstance(windows[0], Mapping):
        raise _fail(where, "spec.timeWindow: give one rolling window")
    tw = windows[0]
    if not tw.get("isRolling", False) or tw.get("calendar"):
        raise _fail(where, "spec.timeWindow: only a rolling window is supported (isRolling: true), not a calendar one")
    m = _DURATION.match(str(tw.get("duration", "")).strip())
    if not m:
        raise _fail(where, f"spec.timeWindow.duration {tw.get('duration')!r}: use days, weeks or 1M (28d, 4w)")
    return f"{int(m.group(1)) * _DAYS[m.group(2)]}d"


def _source(where: str, metric: Mapping[str, Any], key: str) -> dict[str, Any]:
    src = metric.get("metricSource") or {}
    if str(src.get("type", "")).lower() != "aimon":
        raise _fail(
            where,
            f"{key}.metricSource.type {src.get('type')!r}: aimon computes its SLIs from the interactions "
            "table, so the source must be `type: aimon` with spec {sli: availability|latency, model, endpoint}",
        )
    spec = dict(src.get("spec") or {})
    unknown = sorted(set(spec) - {"sli", "model", "endpoint"})
    if unknown:
        raise _fail(where, f"{key}.metricSource.spec: unknown key(s) {', '.join(unknown)} (sli, model, endpoint)")
    return spec


def _indicator(where: str, spec: Mapping[str, Any], objective: Mapping[str, Any], slis: Mapping[str, Any]) -> Any:
    ind = objective.get("indicator") or spec.get("indicator")
    ref = objective.get("indicatorRef") or spec.get("indicatorRef")
    if ind is None and ref is not None:
        if ref not in slis:
            raise _fail(where, f"indicatorRef {ref!r}: no `kind: SLI` document of that name in the file")
        ind = slis[ref]
    if not isinstance(ind, Mapping):
        raise _fail(where, "no indicator: give spec.indicator (inline) or spec.indicatorRef")
    return ind.get("spec", ind)


def _entry(
    where: str, name: str, description: str | None, period: str, ind: Mapping[str, Any], obj: Mapping[str, Any]
) -> dict[str, Any]:
    if "target" in obj:
        target = float(obj["target"])
    elif "targetPercent" in obj:
        target = float(obj["targetPercent"]) / 100.0
    else:
        raise _fail(where, "objective: give target (e.g. 0.99) or targetPercent")
    sli: dict[str, Any]
    if "ratioMetric" in ind:
        rm = ind["ratioMetric"] or {}
        good = _source(where, rm.get("good") or {}, "ratioMetric.good")
        _source(where, rm.get("total") or {}, "ratioMetric.total")
        src = good
        kind = good.get("sli", "availability")
        if kind == "latency":
            if "value" not in obj:
                raise _fail(where, "a latency ratioMetric needs the objective's value (seconds)")
            sli = {"type": "latency", "threshold_seconds": float(obj["value"])}
        else:
            sli = {"type": "availability"}
    elif "thresholdMetric" in ind:
        src = _source(where, ind["thresholdMetric"] or {}, "thresholdMetric")
        op = str(obj.get("op", "lte"))
        if op not in ("lt", "lte") or "value" not in obj:
            raise _fail(where, f"a latency objective needs op: lt or lte and a value in seconds (got op {op!r})")
        sli = {"type": "latency", "threshold_seconds": float(obj["value"])}
    else:
        raise _fail(where, "indicator.spec: give a ratioMetric (availability) or a thresholdMetric (latency)")
    if src.get("sli", sli["type"]) != sli["type"]:
        raise _fail(where, f"metricSource.spec.sli {src['sli']!r} does not fit a {sli['type']} indicator")
    out: dict[str, Any] = {"name": name, "objective": target, "period": period, "sli": sli}
    for k in ("model", "endpoint"):
        if src.get(k) is not None:
            out[k] = str(src[k])
    if description:
        out["description"] = description
    try:
        SLOConfig.model_validate(out)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise _fail(where, f"{loc}: {first['msg']}") from None
    return out


def slos_from_openslo(docs: Iterable[Any], source: str = "<openslo>") -> list[dict[str, Any]]:
    """The `slos:` entries of OpenSLO v1 documents (see the module docstring)."""
    docs = [d for d in docs if d is not None]
    bad = [i for i, d in enumerate(docs) if not isinstance(d, Mapping)]
    if bad:
        raise ConfigError(f"OpenSLO {source}: document {bad[0] + 1} is not a mapping")
    slis: dict[str, Any] = {
        str((d.get("metadata") or {}).get("name")): d.get("spec") or {} for d in docs if d.get("kind") == "SLI"
    }
    out: list[dict[str, Any]] = []
    for i, d in enumerate(docs):
        if d.get("kind") != "SLO":
            continue
        meta, spec = d.get("metadata") or {}, d.get("spec") or {}
        name = meta.get("name")
        where = f"{source}: SLO {name or f'#{i + 1}'}"
        if not name:
            raise _fail(where, "metadata.name is required")
        api = str(d.get("apiVersion", ""))
        if api != "openslo/v1":
            raise _fail(where, f"apiVersion {api!r}: aimon reads openslo/v1")
        method = spec.get("budgetingMethod", "Occurrences")
        if method != "Occurrences":
            raise _fail(where, f"budgetingMethod {method!r}: aimon counts events (Occurrences), not time slices")
        period = _period(where, spec)
        objectives = spec.get("objectives") or []
        if not objectives:
            raise _fail(where, "spec.objectives: give at least one objective with a target")
        description = spec.get("description") or meta.get("displayName")
        for k, obj in enumerate(objectives):
            label = obj.get("displayName") or obj.get("name") or str(k + 1)
            entry_name = name if len(objectives) == 1 else f"{name}-{_SLUG.sub('-', str(label)).strip('-').lower()}"
            ind = _indicator(where, spec, obj, slis)
            out.append(_entry(where, entry_name, description, period, ind, obj))
    if not out:
        raise ConfigError(f"OpenSLO {source}: no `kind: SLO` document")
    names = [e["name"] for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"OpenSLO {source}: SLO names repeat ({', '.join(dupes)})")
    return out


def read_openslo(path: Path) -> list[dict[str, Any]]:
    """slos_from_openslo of a YAML file of one or more documents."""
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except OSError as err:
        raise ConfigError(f"cannot read OpenSLO file {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"OpenSLO file {path} is not valid YAML: {err}") from None
    return slos_from_openslo(docs, str(path))

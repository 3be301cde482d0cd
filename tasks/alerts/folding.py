"""One incident, one page: folding alerts into the alert that explains them.

After the window's transitions are known (state.py), an alert that fires is *folded*
into another alert firing in the same window when

- it is a child of it within the same rule: the parent's labels equal the child's,
  except that the parent has `__all__` where the child has a value, or lacks a label
  the child has (the endpoint series under the model's total, a variant under the
  overall figure); or
- an `alerts.inhibit_rules` entry (Alertmanager's inhibition) says so: the parent
  matches its `source`, the child its `target`, and they agree on its `equal` labels.

An incident keeps the alert it was first paged with: a parent that starts firing in a
later window folds into that alert instead ("paged first"), so one incident that
spreads to a broader figure the next day is not paged again.

A folded alert is recorded with status "folded" and the id of the alert it is folded
into (the root of the chain, the one that is notified), is not sent on its own, and
is listed in its root's notification. Folding is decided afresh in every window from
that window's transitions only, so a rerun folds the same way, and an alert whose
parent stops firing is a normal firing alert again in that window (and is sent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from aimon.config.alerts import InhibitRule
from aimon.config.channels import SEVERITIES
from aimon.matchers import Matcher, matches_all
from aimon.records import ALL
from aimon.tasks.alerts.render import fmt_value
from aimon.tasks.alerts.rules import Judgement
from aimon.tasks.alerts.state import Transition, alert_labels

ACTIVE = ("firing", "recovering")  # event statuses of an alert that fires in the window


@dataclass(frozen=True)
class Fold:
    child: int  # index into the window's transitions
    root: int  # the alert it is folded into: itself not folded
    via: str  # "roll-up" (same rule) or "inhibit_rules.N"


def is_rollup_of(parent: Mapping[str, str], child: Mapping[str, str]) -> bool:
    """The parent's labels equal the child's, except where the parent has `__all__`
    (and the child a value) or lacks the child's label; at least one such difference."""
    if not set(parent) <= set(child):
        return False
    differs = False
    for k, v in child.items():
        if k not in parent:
            differs = True
        elif parent[k] != v:
            if parent[k] != ALL:
                return False
            differs = True
    return differs


def _inhibits(rule: InhibitRule, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
    src = [Matcher.from_config(k, v) for k, v in rule.source.items()]
    tgt = [Matcher.from_config(k, v) for k, v in rule.target.items()]
    return (
        matches_all(src, source)
        and matches_all(tgt, target)
        and all(source.get(k, "") == target.get(k, "") for k in rule.equal)
    )


def folds(
    transitions: Sequence[tuple[Judgement, Transition]],
    inhibit_rules: Sequence[InhibitRule],
    granularity: str,
) -> dict[int, Fold]:
    """Which of the window's firing alerts fold into which, by transition index."""
    active = [i for i, (_, t) in enumerate(transitions) if t.event is not None and t.event.status in ACTIVE]
    labels = {i: dict(transitions[i][0].labels) for i in active}
    full = {i: alert_labels(transitions[i][0].rule, labels[i], granularity) for i in active}

    def rank(i: int) -> tuple[int, int, str, str]:
        # Of several parents, the most severe, then the most general, then by name.
        j = transitions[i][0]
        concrete = sum(1 for v in labels[i].values() if v != ALL)
        return (SEVERITIES.index(j.rule.severity), concrete, j.rule.name, j.labels_json)

    parent: dict[int, tuple[int, str]] = {}
    for c in active:
        cands: list[tuple[int, str]] = []
        for p in active:
            if p == c:
                continue
            jp, jc = transitions[p][0], transitions[c][0]
            if jp.rule.name == jc.rule.name and is_rollup_of(labels[p], labels[c]):
                cands.append((p, "roll-up"))
                continue
            for n, ir in enumerate(inhibit_rules):
                if _inhibits(ir, full[p], full[c]):
                    cands.append((p, f"inhibit_rules.{n}"))
                    break
        if cands:
            parent[c] = min(cands, key=lambda pv: rank(pv[0]))

    # An incident keeps the alert it was paged with: when an alert paged in an earlier
    # window (no first notice now) would fold under a chain whose root fires for the
    # first time (the overall figure joins a model's drop the next day, QualityDrop
    # joins FeedbackDrop), the chain's root folds into it instead, so the incident is
    # not paged again under a new name. Its next repeat lists the folded series.
    def paged_before(i: int) -> bool:  # its route was told it fires, in an earlier window
        t = transitions[i][1]
        return t.state.notified_status == "firing" and (t.notify != "firing" or t.repeat)

    for c in sorted(parent, key=rank):
        if c not in parent or not paged_before(c):
            continue
        root, chain = c, {c}
        while root in parent and parent[root][0] not in chain:
            root = parent[root][0]
            chain.add(root)
        if root != c and not paged_before(root):
            del parent[c]
            parent[root] = (c, "paged first")
    # Mutual inhibition must not silence a whole cycle: in each cycle of the parent
    # links, the first alert by rank keeps its page (as its own root).
    for start in sorted(parent, key=rank):
        seen: list[int] = []
        i: int | None = start
        while i is not None and i in parent and i not in seen:
            seen.append(i)
            i = parent[i][0]
        if i is not None and i in seen:
            cycle = seen[seen.index(i) :]
            del parent[min(cycle, key=rank)]
    out = {}
    for c, (p, via) in parent.items():
        root = p
        while root in parent:
            root = parent[root][0]
        out[c] = Fold(c, root, via)
    return out


def brief(j: Judgement) -> str:
    return f"{j.rule.name}{{{', '.join(f'{k}={v}' for k, v in j.labels)}}}"


def apply_folds(
    transitions: Sequence[tuple[Judgement, Transition]],
    fold_map: Mapping[int, Fold],
) -> list[tuple[Judgement, Transition]]:
    """The transitions with the folded ones recorded as "folded" and not notified.

    A folded alert's state forgets what its route was told, so if its parent resolves
    while it still breaches, it is announced as firing then."""
    out = list(transitions)
    for c, f in fold_map.items():
        j, t = transitions[c]
        root_j, root_t = transitions[f.root]
        into = root_t.state.alert_id
        assert t.event is not None
        was = t.event.note
        note = f"folded into {brief(root_j)} ({f.via})" + (f"; {was}" if was else "")
        event = replace(t.event, status="folded", folded_into=into, note=note)
        state = t.state
        if state.last_window_start == t.event.window_start and state.status == "firing":
            # (A historical window leaves the state untouched: only its event folds.)
            state = replace(state, status="folded", folded_into=into, notified_status=None)
        out[c] = (j, replace(t, state=state, event=event, notify=None, repeat=False))
    return out


def hand_over(transitions: Sequence[tuple[Judgement, Transition]]) -> list[tuple[Judgement, Transition]]:
    """An incident goes on under the series it folded when its root is back within
    bounds first (the overall F1 recovers while the broken model's stays low): the
    series that was folded into the resolving root, still firing, takes the incident
    over without a new page (its route was told: it will hear when it resolves), and the
    root's RESOLVED notice is not sent, since the incident is not over."""
    resolving = {t.state.alert_id: i for i, (_, t) in enumerate(transitions) if t.notify == "resolved"}
    out = list(transitions)
    for i, (j, t) in enumerate(transitions):
        if t.notify != "firing" or t.repeat or t.folded_from not in resolving or t.event is None:
            continue
        r = resolving[t.folded_from]
        rj, rt = out[r]
        note = f"continues the incident of {brief(rj)}, back within bounds"
        state = replace(
            t.state, notified_status="firing", last_notified_window_start=rt.state.last_notified_window_start
        )
        out[i] = (j, replace(t, state=state, event=replace(t.event, note=note), notify=None))
        out[r] = (rj, replace(rt, state=replace(rt.state, notified_status="resolved"), notify=None))
    return out


def folded_items(
    transitions: Sequence[tuple[Judgement, Transition]], fold_map: Mapping[int, Fold], root: int
) -> list[dict[str, object]]:
    """The series folded into the alert at index `root`, for its notification."""
    items = []
    for c, f in sorted(
        fold_map.items(), key=lambda cf: (transitions[cf[0]][0].rule.name, transitions[cf[0]][0].labels_json)
    ):
        if f.root != root:
            continue
        j, t = transitions[c]
        items.append(
            {
                "alert_id": t.state.alert_id,
                "rule": j.rule.name,
                "metric": j.rule.metric,
                "labels": json.loads(j.labels_json),
                "value_text": fmt_value(j.rule.metric, j.value),
            }
        )
    return items

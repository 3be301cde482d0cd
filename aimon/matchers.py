"""Label matchers, as in Prometheus and Alertmanager: `k=v`, `k!=v`, `k=~re`, `k!~re`.

Used by alert rules (which series a rule watches) and silences (which alerts they
mute). A label the series does not carry matches as the empty string, as in
Prometheus, so `endpoint!=__all__` also matches a series without an endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_CLI = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    key: str
    op: str  # = != =~ !~
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as err:
                raise ValueError(f"matcher {self}: bad regular expression: {err}") from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """From the command line: `model=gpt-4o`, `endpoint!=__all__`, `alertname=~High.*`."""
        m = _CLI.match(text)
        if not m:
            raise ValueError(f"matcher {text!r}: use key=value, key!=value, key=~regex or key!~regex")
        value = m.group(3)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return cls(m.group(1), m.group(2), value)

    @classmethod
    def from_config(cls, key: str, value: str) -> Matcher:
        """From a rule's `labels:` mapping: the operator prefixes the value."""
        for op in ("!=", "=~", "!~"):
            if value.startswith(op):
                return cls(key, op, value[len(op) :])
        return cls(key, "=", value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.key, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def evidence_matches(metric: str, labels: Mapping[str, str], figure_labels: Mapping[str, str]) -> bool:
    """Whether a figure of another metric (a rule's min_sample n) stands behind the series
    of `metric` with `labels`: the series carries every label of the figure with the same
    value, and a `metric` label the series lacks names `metric` (as
    quality_sample_size{metric=...} does). Used by the alert rules and the report."""
    return all(labels[k] == x if k in labels else (k == "metric" and x == metric) for k, x in figure_labels.items())

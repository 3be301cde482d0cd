"""The table of drift tests by name (Evidently's layout, ``legacy/calculations/stattests``):
each test is a plain function ``(reference, current, threshold) -> StatTestResult``,
listed here with the kinds of feature it takes, whether it is judged by a p-value or
a distance, and its default threshold. A `drift.features[].method` in the config is
checked against this table (aimon.config.analyses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aimon.stats.stattests.binned import chisquare, hellinger, jensenshannon, psi, z
from aimon.stats.stattests.ksample import anderson_darling, epps_singleton
from aimon.stats.stattests.numeric import cramer_von_mises, ks, wasserstein
from aimon.stats.stattests.results import StatTestResult
from aimon.stats.stattests.samples import Kind

StatTestFunc = Callable[[Any, Any, float], StatTestResult]


@dataclass(frozen=True)
class StatTest:
    name: str
    func: StatTestFunc
    kinds: tuple[Kind, ...]
    p_value: bool  # True: drift when p < threshold; False: a distance, drift when >= threshold
    default_threshold: float

    def __call__(self, reference: Any, current: Any, threshold: float | None = None) -> StatTestResult:
        return self.func(reference, current, self.default_threshold if threshold is None else threshold)


STATTESTS: dict[str, StatTest] = {}


def register(name: str, kinds: tuple[Kind, ...], p_value: bool, default_threshold: float) -> Callable[..., Any]:
    def deco(func: StatTestFunc) -> StatTestFunc:
        STATTESTS[name] = StatTest(name, func, kinds, p_value, default_threshold)
        return func

    return deco


def get_stattest(name: str) -> StatTest:
    try:
        return STATTESTS[name]
    except KeyError:
        raise KeyError(f"unknown drift method {name!r}; valid: {', '.join(sorted(STATTESTS))}") from None


# -- the table ---------------------------------------------------------------------
# One line per test, in the order STATTESTS has always iterated in.

register("ks", ("numerical",), p_value=True, default_threshold=0.05)(ks)
register("wasserstein", ("numerical",), p_value=False, default_threshold=0.1)(wasserstein)
register("cramer_von_mises", ("numerical",), p_value=True, default_threshold=0.05)(cramer_von_mises)
register("psi", ("numerical", "categorical"), p_value=False, default_threshold=0.1)(psi)
register("jensenshannon", ("numerical", "categorical"), p_value=False, default_threshold=0.1)(jensenshannon)
register("hellinger", ("numerical", "categorical"), p_value=False, default_threshold=0.1)(hellinger)
register("chisquare", ("categorical",), p_value=True, default_threshold=0.05)(chisquare)
register("z", ("categorical",), p_value=True, default_threshold=0.05)(z)
# Evidently's names and default thresholds (its "anderson" is judged at 0.1).
register("anderson", ("numerical",), p_value=True, default_threshold=0.1)(anderson_darling)
register("es", ("numerical",), p_value=True, default_threshold=0.05)(epps_singleton)

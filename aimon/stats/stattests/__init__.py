"""Two-sample drift tests: each a plain function ``(reference, current, threshold) -> StatTestResult``,
registered by name (Evidently's layout, ``legacy/calculations/stattests``).

Where things are: the two sides a test compares, `NumericSample` and `Counts`, and
their sketches in `samples`; the tests on pooled empirical CDFs (KS, Wasserstein,
Cramér-von Mises) in `numeric`; the tests on shares (PSI, Jensen-Shannon, Hellinger,
chi-square, z) in `binned`; `StatTestResult` and Benjamini-Hochberg in `results`; the
table of tests by name, `STATTESTS`, in `registry`.

Everything is re-exported here, so ``from aimon.stats import stattests as st`` and
``st.ks(...)``, ``st.get_stattest("psi")`` read as they always have.
"""

from aimon.stats.stattests.binned import binned_shares, chisquare, hellinger, jensenshannon, js_distance, psi, z
from aimon.stats.stattests.ksample import anderson_darling, epps_singleton
from aimon.stats.stattests.numeric import (
    cramer_von_mises,
    ks,
    ks_and_w1,
    ks_and_wasserstein,
    ks_p_value,
    ks_statistic,
    wasserstein,
    wasserstein_raw,
)
from aimon.stats.stattests.registry import STATTESTS, StatTest, StatTestFunc, get_stattest, register
from aimon.stats.stattests.results import StatTestResult, benjamini_hochberg
from aimon.stats.stattests.samples import (
    MAX_DISCRETE,
    Counts,
    Kind,
    NumericSample,
    counts,
    merge_counts,
    merge_samples,
    numeric_sample,
    sample_from_sorted,
    sketch,
)

__all__ = [
    "MAX_DISCRETE",
    "STATTESTS",
    "Counts",
    "Kind",
    "NumericSample",
    "StatTest",
    "StatTestFunc",
    "StatTestResult",
    "anderson_darling",
    "benjamini_hochberg",
    "binned_shares",
    "chisquare",
    "counts",
    "cramer_von_mises",
    "epps_singleton",
    "get_stattest",
    "hellinger",
    "jensenshannon",
    "js_distance",
    "ks",
    "ks_and_w1",
    "ks_and_wasserstein",
    "ks_p_value",
    "ks_statistic",
    "merge_counts",
    "merge_samples",
    "numeric_sample",
    "psi",
    "register",
    "sample_from_sorted",
    "sketch",
    "wasserstein",
    "wasserstein_raw",
    "z",
]

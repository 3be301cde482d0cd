"""Embedding drift: a centroid distance, a domain classifier, and MMD.

Both sides are subsampled to a cap with a fixed seed before any of this runs, and the
results carry the sample sizes. The MMD test permutes the *pooled* sample and counts
the observed statistic among the permutations (p = (1 + #{perm >= obs}) / (B + 1)),
avoiding two bugs seen in peers: resampling only the reference, and leaving the
observed statistic out (which lets p reach 0 and inflates false positives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EmbeddingTestResult:
    method: str  # centroid | domain_classifier | mmd
    statistic: float  # cosine distance, ROC AUC, or MMD^2
    p_value: float | None
    threshold: float | None  # what `drifted` compared against (None: a score only)
    drifted: bool | None
    n_reference: int
    n_current: int
    form: str | None = None  # centroid: "scaled" (Euclidean over the spread) or "cosine"


def subsample(x: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most `cap` rows, chosen without replacement by a seeded generator, in row order."""
    if len(x) <= cap:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=cap, replace=False))
    return x[idx]


# The cosine between centroids means something only for unit-length embeddings whose
# mean is well off the origin (text embeddings' common direction): near the origin the
# direction of a mean is noise (two samples of one centred day scored 0.775 and 0.275).
UNIT_TOLERANCE = 0.01  # rows whose norm is within 1% of 1 count as unit-length ...
COSINE_MIN_MEAN_NORM = 0.25  # ... and the pooled mean's norm at least this


def centroid_form(pooled: np.ndarray) -> str:
    """ "cosine" when 99% of the rows are unit-length and their mean's norm is at least
    COSINE_MIN_MEAN_NORM, else "scaled"."""
    norms = np.linalg.norm(pooled, axis=1)
    unit = float(np.mean(np.abs(norms - 1.0) <= UNIT_TOLERANCE)) >= 0.99
    mean_norm = float(np.linalg.norm(pooled.mean(axis=0)))
    return "cosine" if unit and mean_norm >= COSINE_MIN_MEAN_NORM else "scaled"


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cosine of each row pair of a and b (0 when either is the zero vector)."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    dot = np.einsum("...i,...i->...", a, b)
    ok = (na > 0) & (nb > 0)
    return np.where(ok, 1.0 - dot / np.where(ok, na * nb, 1.0), 0.0)  # type: ignore[no-any-return]


def centroid_distance(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    permutations: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    form: str | None = None,
) -> EmbeddingTestResult:
    """How far the current centroid moved from the reference's, with a permutation
    p-value. `form` (default: centroid_form of the pooled rows): "scaled", the Euclidean
    distance between the centroids over the pooled within-sample spread (the root mean
    squared distance of a row to its own side's centroid), which is stable wherever the
    embeddings sit; or "cosine", 1 - cosine of the two centroids, for unit-length
    embeddings with a clearly non-zero mean. The p-value relabels the pooled rows
    `permutations` times and counts the observed distance among them (p = (1 + #{perm
    >= obs}) / (B + 1)); the scaled form's permutations keep the observed spread, so p
    is that of the Euclidean distance itself."""
    x = np.vstack([reference, current]).astype(np.float64)
    n, m = len(reference), len(current)
    form = form or centroid_form(x)
    a, b = x[:n].mean(axis=0), x[n:].mean(axis=0)
    if form == "cosine":
        observed = float(_cosine_distance(a, b))
    else:
        within = float(np.sum((x[:n] - a) ** 2) + np.sum((x[n:] - b) ** 2)) / max(n + m - 2, 1)
        spread = math.sqrt(within)
        observed = float(np.linalg.norm(b - a)) / spread if spread > 0 else 0.0
    p = None
    if permutations > 0 and n and m:
        rng = np.random.default_rng(seed)
        is_cur = np.concatenate([np.zeros(n, bool), np.ones(m, bool)])
        labels = np.empty((permutations, n + m))
        for j in range(permutations):
            labels[j] = rng.permutation(is_cur)
        cur_sum = labels @ x  # (B, d): each relabelling's current-side sums, one matmul
        cur_mean = cur_sum / m
        ref_mean = (x.sum(axis=0) - cur_sum) / n
        if form == "cosine":
            perm = _cosine_distance(ref_mean, cur_mean)
        else:
            perm = np.linalg.norm(cur_mean - ref_mean, axis=1) / (spread if spread > 0 else 1.0)
        ge = int(np.sum(perm >= observed - 1e-12 * max(1.0, abs(observed))))
        p = (1 + ge) / (permutations + 1)
    drifted = None if p is None else p < alpha
    return EmbeddingTestResult("centroid", observed, p, alpha if p is not None else None, drifted, n, m, form)


def domain_classifier_auc(
    reference: np.ndarray, current: np.ndarray, *, threshold: float = 0.55, seed: int = 0, folds: int = 5
) -> EmbeddingTestResult:
    """Can a classifier tell the windows apart? Cross-validated ROC AUC of a logistic
    regression on standardised embeddings; 0.5 means no, drift above `threshold`."""
    # lazy: scikit-learn costs ~1 s to import, and only embedding drift needs it
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    x = np.vstack([reference, current]).astype(np.float64)
    y = np.concatenate([np.zeros(len(reference)), np.ones(len(current))])
    k = max(2, min(folds, len(reference), len(current)))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    auc = float(np.mean(cross_val_score(model, x, y, cv=cv, scoring="roc_auc")))
    return EmbeddingTestResult("domain_classifier", auc, None, threshold, auc > threshold, len(reference), len(current))


# The cross-validated AUC of two samples of one distribution spreads ~1.3-1.45x as
# widely as the Mann-Whitney AUC's null (simulated: 40 reps each at 3,500 vs 500,
# 9,000 vs 3,000 and 2,000 vs 300 rows, 8-16 dimensions): the classifier is fitted too.
AUC_SPREAD_FACTOR = 1.5


def auc_null_spread(n_reference: int, n_current: int) -> float:
    """The spread of the domain classifier's AUC on two samples of one distribution at
    these sample sizes: sqrt((n1 + n2 + 1) / (12 n1 n2)), the Mann-Whitney AUC's, times
    AUC_SPREAD_FACTOR (inf without rows)."""
    if n_reference < 1 or n_current < 1:
        return math.inf
    return AUC_SPREAD_FACTOR * math.sqrt((n_reference + n_current + 1) / (12.0 * n_reference * n_current))


def auc_z(auc: float, n_reference: int, n_current: int) -> float:
    """The AUC above 0.5 in units of its null spread: comparable across windows of any
    size (a weekend's 150 rows and a weekday's 1,500), so a bound can be learned from them."""
    spread = auc_null_spread(n_reference, n_current)
    return 0.0 if math.isinf(spread) else (auc - 0.5) / spread


def auc_noise_bound(n_reference: int, n_current: int, z: float) -> float:
    """0.5 + z x the null spread of the domain classifier's AUC at these sample sizes."""
    spread = auc_null_spread(n_reference, n_current)
    return 1.0 if math.isinf(spread) else min(1.0, 0.5 + z * spread)


def rbf_kernel(z: np.ndarray, bandwidth: float) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    return np.exp(-d2 / (2.0 * bandwidth**2))  # type: ignore[no-any-return]


def median_bandwidth(z: np.ndarray, seed: int = 0, max_rows: int = 1000) -> float:
    """The median pairwise distance of (up to 1000 rows of) the pooled sample."""
    s = subsample(z, max_rows, seed)
    sq = np.einsum("ij,ij->i", s, s)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (s @ s.T), 0.0)
    med = float(np.sqrt(np.median(d2[np.triu_indices(len(s), k=1)])))
    return med if med > 0 else 1.0


def mmd2_biased(kernel: np.ndarray, is_current: np.ndarray) -> float:
    """Biased MMD^2 = a' K a with a = 1/n on reference rows, -1/m on current rows."""
    a = np.where(is_current, -1.0 / is_current.sum(), 1.0 / (~is_current).sum())
    return float(a @ kernel @ a)


def mmd_test(
    reference: np.ndarray, current: np.ndarray, *, permutations: int = 200, seed: int = 0, alpha: float = 0.05
) -> EmbeddingTestResult:
    """MMD^2 (RBF kernel, median-heuristic bandwidth) with a pooled permutation test."""
    z = np.vstack([reference, current]).astype(np.float64)
    n, m = len(reference), len(current)
    is_cur = np.concatenate([np.zeros(n, bool), np.ones(m, bool)])
    k = rbf_kernel(z, median_bandwidth(z, seed))
    observed = mmd2_biased(k, is_cur)
    rng = np.random.default_rng(seed)
    # Every permutation relabels the pooled sample; their a-vectors go through one matmul.
    a = np.empty((n + m, permutations))
    for j in range(permutations):
        lab = rng.permutation(is_cur)
        a[:, j] = np.where(lab, -1.0 / m, 1.0 / n)
    perm_stats = np.einsum("ij,ij->j", a, k @ a)
    # Ties (e.g. identical samples) count as >= with a relative tolerance for rounding.
    ge = int(np.sum(perm_stats >= observed - 1e-12 * max(1.0, abs(observed))))
    p = (1 + ge) / (permutations + 1)
    return EmbeddingTestResult("mmd", observed, p, alpha, p < alpha, n, m)


def combine_reference(parts: list[tuple[int, np.ndarray]], cap: int, seed: int) -> np.ndarray:
    """A reference sample from per-window samples: each window contributes in proportion
    to its rows (each stored sample is a uniform subsample of its window)."""
    parts = [(n, s) for n, s in parts if n and len(s)]
    if not parts:
        return np.empty((0, 0), np.float32)
    total = sum(n for n, _ in parts)
    take = [min(len(s), max(1, math.floor(cap * n / total + 0.5))) for n, s in parts]
    return np.vstack([subsample(s, t, seed + i) for i, ((_, s), t) in enumerate(zip(parts, take, strict=True))])

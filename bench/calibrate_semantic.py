"""Calibration of the semantic-similarity defaults (quality, tasks/quality/semantic.py):

1. the 95% interval of `semantic_similarity` (a percentile bootstrap of 1,000 draws up to
   20,000 rows, the mean's normal interval above): how often it covers the true mean
   similarity, by window size, on a skewed per-row similarity;
2. `semantic_reference_similarity` (each response's cosine similarity to the nearest of
   8 k-means centroids of 5,000 reference-period responses): its spread over normal
   windows, and how far it falls when a share of the answers goes off-topic, in units
   of that spread.

Embeddings are 64-dimensional: responses are one of 12 topics (a unit topic vector plus
per-answer noise of varying size); a reference answer is its response's topic plus other
noise. docs/analyses/quality.md, "Semantic similarity".

    nice .venv/bin/python bench/calibrate_semantic.py [--windows 400] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from aimon.tasks.quality.semantic import (
    CENTROIDS,
    REFERENCE_ROWS,
    _interval,
    centroids,
    nearest_centroid_similarity,
    row_similarities,
)

DIM, TOPICS = 64, 12


class World:
    def __init__(self, rng: np.random.Generator):
        t = rng.standard_normal((TOPICS + 4, DIM))
        self.topics = t / np.linalg.norm(t, axis=1, keepdims=True)  # the last 4: off-topic
        self.weights = rng.dirichlet(np.full(TOPICS, 2.0))

    def responses(self, rng: np.random.Generator, n: int, off_topic: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        topic = rng.choice(TOPICS, n, p=self.weights)
        off = rng.random(n) < off_topic
        topic[off] = TOPICS + rng.integers(0, 4, int(off.sum()))
        # Answers vary in how close they stay to the topic (a skewed similarity).
        spread = rng.gamma(2.0, 0.06, n)[:, None]
        return self.topics[topic] + spread * rng.standard_normal((n, DIM)), topic

    def pairs(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        resp, topic = self.responses(rng, n)
        ref = self.topics[topic] + 0.1 * rng.standard_normal((n, DIM))
        return resp, ref


def coverage(rng: np.random.Generator, windows: int) -> list[tuple[int, float, float]]:
    world = World(rng)
    resp, ref = world.pairs(rng, 400_000)
    truth = float(row_similarities(resp, ref)[0].mean())
    out = []
    for n in (30, 100, 1000, 5000, 30_000):
        hit, widths = 0, []
        for _ in range(windows if n < 30_000 else windows // 4):
            r, f = world.pairs(rng, n)
            x = row_similarities(r, f)[0]
            ci = _interval(x, 1000, rng)
            assert ci is not None
            hit += ci[0] <= truth <= ci[1]
            widths.append(ci[1] - ci[0])
        out.append((n, hit / (windows if n < 30_000 else windows // 4), float(np.mean(widths))))
    return out


def shift(rng: np.random.Generator, windows: int) -> list[tuple[int, float, float, list[float]]]:
    world = World(rng)
    ref, _ = world.responses(rng, REFERENCE_ROWS)
    centres = centroids(ref, CENTROIDS, 0)
    out = []
    for n in (200, 2000):
        null = [float(nearest_centroid_similarity(world.responses(rng, n)[0], centres).mean()) for _ in range(windows)]
        mean, sd = float(np.mean(null)), float(np.std(null, ddof=1))
        drops = []
        for share in (0.02, 0.05, 0.10, 0.25):
            got = [
                float(nearest_centroid_similarity(world.responses(rng, n, share)[0], centres).mean())
                for _ in range(windows // 4)
            ]
            drops.append((mean - float(np.mean(got))) / sd)
        out.append((n, mean, sd, drops))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=400, help="simulated windows per row")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print("semantic_similarity: 95% interval coverage of the true mean similarity")
    print()
    print("| rows in the window | interval | coverage | mean width |")
    print("|---:|---|---:|---:|")
    for n, cov, width in coverage(rng, args.windows):
        how = "bootstrap, 1,000 draws" if n <= 20_000 else "normal (above 20,000 rows)"
        print(f"| {n:,} | {how} | {cov:.1%} | {width:.4f} |", flush=True)
    print()
    print("semantic_reference_similarity: normal windows, and windows with a share of off-topic answers")
    print()
    print("| rows in the window | normal mean | normal sd | drop at 2% off-topic | 5% | 10% | 25% |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, mean, sd, drops in shift(rng, args.windows):
        cells = [f"{d:.1f} sd" for d in drops]
        print(f"| {n:,} | {mean:.4f} | {sd:.4f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

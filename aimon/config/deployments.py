"""Planned changes (aimon.tasks.deploy): recorded deployments and the post-deployment check.

A deployment is recorded by `aimon annotate deploy` or detected in the data (a model
with rows in a window and none in the `detect_after_windows` windows before). For
`check_windows` windows after it, the new model is compared with the baseline (the
model it replaces, else the other models of its endpoint, over `baseline_windows`
windows before the deployment): each check fails only when its ratio is past the
limit and a one-sided test says the new model is worse beyond sampling noise.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from aimon.config.base import Strict, check_identifier


class DeploymentsConfig(Strict):
    enabled: bool = True
    table: str = "monitoring_deployments"  # in the store's database
    # Record a model seen for the first time as a deployment ("detected"): it has rows in
    # the window and none in the previous detect_after_windows windows (while those hold rows).
    detect: bool = True
    detect_after_windows: int = Field(default=7, ge=1, le=1000)
    check_windows: int = Field(default=7, ge=1, le=1000)  # windows judged from the deployment's own
    # deployment_rollout_active{model} is 1 for this many windows from the deployment's:
    # rules with `unless: [{metric: deployment_rollout_active, equal: [model]}]` hold off.
    # 21: a rollout of up to two weeks, then the 7 reference windows drift needs to catch
    # up with the new model mix (after 14, a 10-day rollout's model drift still scored
    # 0.097 and 0.101 against the 0.1 floor in the simulated years).
    rollout_windows: int = Field(default=21, ge=1, le=1000)
    baseline_windows: int = Field(default=7, ge=1, le=1000)  # before the deployment's window
    latency_ratio: float = Field(default=1.5, gt=0)  # p95 of the new model / the baseline's, at most
    error_ratio: float = Field(default=2.0, gt=0)  # error rate new / baseline, at most
    quality_ratio: float = Field(default=0.9, gt=0)  # accuracy new / baseline (labelled rows), at least
    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # each check's one-sided test
    min_sample: int = Field(default=100, ge=1)  # rows (labelled rows for quality) a side, else not judged
    sample_cap: int = Field(default=20000, ge=100)  # latency rows a side for the rank test (seeded sample)
    seed: int = 0

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        return check_identifier(v, "deployments.table")

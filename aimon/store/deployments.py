"""Deployments: when a model (per endpoint, or everywhere) went live and what it replaced.

Recorded by `aimon annotate deploy` ("annotation") or by the post-deployment analyzer
when a model shows up in the data ("detected"). The analyzer reads them back to check
the new model against its baseline and to mark the rollout (deployment_rollout_active).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import redact
from aimon.store.schema import as_datetime, create_tables, deployments_table, store_engine, utcnow, within

SOURCES = ("annotation", "detected")


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    model: str
    endpoint: str | None
    deployed_at: dt.datetime  # naive UTC
    replaces: str | None
    note: str | None
    source: str
    created_by: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, r: Any) -> Deployment:
        return cls(
            r["deployment_id"],
            r["model"],
            r["endpoint"],
            as_datetime(r["deployed_at"]),
            r["replaces"],
            r["note"],
            r["source"],
            r["created_by"],
            as_datetime(r["created_at"]),
        )


class DeploymentStore:
    def __init__(self, cfg: Config):
        self.url = cfg.store_url
        self.engine = store_engine(cfg)
        self.table = deployments_table(cfg.deployments.table)

    @property
    def where(self) -> str:
        return f"table {self.table.name} at {redact(self.url)}"

    def ensure(self) -> None:
        create_tables(self.engine, (self.table,), f"the deployments table {self.where}")

    def add(
        self,
        model: str,
        deployed_at: dt.datetime,
        *,
        endpoint: str | None = None,
        replaces: str | None = None,
        note: str | None = None,
        source: str = "annotation",
        created_by: str = "aimon",
    ) -> Deployment:
        if source not in SOURCES:
            raise ValueError(f"deployment source {source!r}: use one of {', '.join(SOURCES)}")
        if not model:
            raise ValueError("a deployment needs a model")
        if deployed_at.tzinfo is not None:
            deployed_at = deployed_at.astimezone(dt.UTC).replace(tzinfo=None)
        dep = Deployment(
            uuid.uuid4().hex[:16], model, endpoint, deployed_at, replaces, note, source, created_by, utcnow()
        )
        self.ensure()
        with self.engine.begin() as conn:
            conn.execute(self.table.insert().values(**dep.__dict__))
        return dep

    def find(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None, model: str | None = None
    ) -> list[Deployment]:
        """Deployments with deployed_at in [since, until), oldest first."""
        if not self._exists():
            return []
        t = self.table
        q = within(sa.select(t).order_by(t.c.deployed_at, t.c.created_at), t.c.deployed_at, since, until)
        if model is not None:
            q = q.where(t.c.model == model)
        with self.engine.connect() as conn:
            return [Deployment.from_row(r) for r in conn.execute(q).mappings()]

    def _exists(self) -> bool:
        with self.engine.connect() as conn:
            return sa.inspect(conn).has_table(self.table.name)

"""Who holds an embedded DuckDB store: a small JSON file beside it.

DuckDB lets one process at a time open a file read-write, so while one run holds the
store file a second one cannot even read the claims table. The holder therefore
mirrors its live claims into ``<file>.holder.json`` whenever they change (only the
holder can change them); a run that waited for the lock in vain reads it to tell "my
window is being run" (skipped, naming the run) from "another window is" (a failure
naming the holder: that window still needs a run). The file is advisory: it names a
process only when the PID in DuckDB's lock error matches it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aimon.windows import Window


def holder_file(db: Path) -> Path:
    return db.with_name(db.name + ".holder.json")


def publish_claims(engine: sa.Engine, claims: sa.Table, db: Path) -> None:
    """Write this process's live claims (every claim in the file: only the holder can
    write it) beside the file, atomically."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(claims)).mappings().all()
    data = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "claims": [
            {
                "window_start": r["window_start"].isoformat(),
                "granularity": r["granularity"],
                "run_id": r["run_id"],
                "flow_run_id": r["flow_run_id"],
                "claimed_at": r["claimed_at"].isoformat(),
            }
            for r in rows
        ],
    }
    path = holder_file(db)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass  # advisory: a read-only directory only loses the holder's name in a skip message


def read_holder(db: Path, pid: int | None) -> dict[str, Any] | None:
    """The holder file, if it was written by process `pid` (None: by any process)."""
    try:
        data = json.loads(holder_file(db).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or (pid is not None and data.get("pid") != pid):
        return None
    return data


def claim_of(holder: dict[str, Any], window: Window) -> dict[str, Any] | None:
    for c in holder.get("claims", []):
        if c.get("window_start") == window.start.isoformat() and c.get("granularity") == window.granularity:
            return dict(c)
    return None


def describe(holder: dict[str, Any] | None, pid: int | None) -> str:
    """'PID 123 on host, running daily 2026-11-28 (run ab12)' for a message."""
    who = f"PID {pid}" if pid else "another process"
    if holder is None:
        return who
    runs = [f"{c['granularity']} {c['window_start'][:16]} (run {c['run_id']})" for c in holder.get("claims", [])]
    return f"{who} on {holder.get('host', '?')}" + (f", running {', '.join(runs)}" if runs else "")

"""What the benchmark scripts share: running a script again in a fresh interpreter (so
each measured part has its own imports and its own peak memory) and reading that peak.

A child prints one line ``BENCH-RESULT {json}`` (``emit``); ``spawn`` runs it and
returns the JSON. Peak memory is VmHWM from /proc/self/status, reset with
``clear_refs`` before a part: ru_maxrss would carry the parent's peak across fork+exec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT_TAG = "BENCH-RESULT "


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def hwm_mib() -> float:
    """This process's peak RSS since the last reset_hwm(), MiB."""
    return _status_mib("VmHWM")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this checkout importable, no warehouse override."""
    env = dict(os.environ)
    env.pop("AIMON_WAREHOUSE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def emit(result: Any) -> None:
    print(RESULT_TAG + json.dumps(result), flush=True)


def spawn(
    script: str | Path, *args: str, env: dict[str, str] | None = None, timeout: float = 3600, tail: int | None = None
) -> dict[str, Any]:
    """Run `script` with `args` in a fresh interpreter; return the result it emitted.
    On failure, echo its output (the last `tail` characters of each stream) and exit."""
    cmd = [sys.executable, str(Path(script).resolve()), *args]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env or child_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        out, err = (proc.stdout, proc.stderr) if tail is None else (proc.stdout[-tail:], proc.stderr[-tail:])
        sys.stderr.write(out + err)
        raise SystemExit(f"child {' '.join(args)} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_TAG) :])  # type: ignore[no-any-return]

"""Prefect runs in ephemeral mode, quietly and offline, with its home under .aimon/.

Must run before `prefect` is first imported: Prefect reads its settings then, and
without PREFECT_HOME even the import creates ~/.prefect. Existing settings win, so a
user pointing PREFECT_API_URL at their own server keeps it.
"""

from __future__ import annotations

import os
from pathlib import Path


def aimon_home() -> Path:
    return Path(os.environ.get("AIMON_HOME", ".aimon")).resolve()


def configure_prefect(log_level: str = "WARNING") -> None:
    home = aimon_home()
    defaults = {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        # A loaded 2-core machine has taken over 60 s to start the ephemeral server.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_LEVEL": log_level,
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)

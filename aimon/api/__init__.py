"""The Python API for notebooks: a small read-only handle on the store.

    import aimon
    m = aimon.open("configs/monitoring.yaml")   # or aimon.open(): the usual config lookup
    m.figures("llm_error_rate", start="2026-11-01", model="gpt-4o")

Every answer is a tidy pandas DataFrame (one row per figure, run or event; timestamps
tz-aware UTC) or a small frozen result, read from the tables a run writes: the metrics
table, the runs table, the alert tables and the A/B statistics. It never reads the
warehouse and never writes. monitor.py holds the handle (`open`, `Monitor`), views.py
the shapes of its answers. `import aimon` stays light: `aimon.open` imports this package
on first use (aimon/__init__.py). docs/python-api.md shows it on the demo store.
"""

from aimon.api.monitor import Monitor, open
from aimon.api.views import ExperimentView

__all__ = ["ExperimentView", "Monitor", "open"]

"""aimon: batch monitoring for AI/ML systems in production, as Prefect 3 flows."""

import pkgutil
from typing import TYPE_CHECKING, Any

# In a source checkout, flows/ and tasks/ sit beside aimon/ and are installed as aimon.flows
# and aimon.tasks (pyproject.toml, package-dir). When the checkout itself comes first on
# sys.path (pytest from the repository root, Prefect loading flows/monitor.py by its path),
# this folder shadows the installed link tree; merging the link tree's aimon/ into this
# package's path keeps aimon.flows and aimon.tasks importable. An installed wheel has one
# aimon/ only, and this changes nothing.
__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from aimon.api import open as open  # for type checkers; at run time: __getattr__ below


def __getattr__(name: str) -> Any:
    """`aimon.open(...)`, the notebook API (aimon.api), imported on first use: everything
    imports `aimon` (the capture side in the monitored app too), so it must stay light
    and never pull in pandas or SQLAlchemy by itself."""
    if name == "open":
        from aimon.api import open  # noqa: PLC0415  lazy: pandas and SQLAlchemy, only when asked for

        return open
    raise AttributeError(f"module 'aimon' has no attribute {name!r}")

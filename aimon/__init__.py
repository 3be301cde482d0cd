"""aimon: batch monitoring for AI/ML systems in production, as Prefect 3 flows."""

import pkgutil

# In a source checkout, flows/ and tasks/ sit beside aimon/ and are installed as aimon.flows
# and aimon.tasks (pyproject.toml, package-dir). When the checkout itself comes first on
# sys.path (pytest from the repository root, Prefect loading flows/monitor.py by its path),
# this folder shadows the installed link tree; merging the link tree's aimon/ into this
# package's path keeps aimon.flows and aimon.tasks importable. An installed wheel has one
# aimon/ only, and this changes nothing.
__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "0.1.0"

"""The `aimon` command line (console script `aimon`, or `python -m aimon.cli`).

Exit status: 0 done, 1 the run failed or ended degraded, 2 bad usage or config. Errors
print as `what failed: what to do`."""

from aimon.cli.app import app, main

__all__ = ["app", "main"]

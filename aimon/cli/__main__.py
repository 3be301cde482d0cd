"""`python -m aimon.cli`: the `aimon` command."""

from aimon.cli import main

main()

"""docs/reliability.md is a table of faults and bad inputs, each row naming the test that
shows what aimon does. Every named test must exist, so the table cannot promise what the
suite does not check."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROW_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_row_of_the_reliability_table_names_a_test_that_exists() -> None:
    page = (REPO / "docs" / "reliability.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 25, "the table lost rows"
    defined: dict[str, set[str]] = {}
    for line in rows:
        named = ROW_TEST.findall(line)
        assert named, f"a row names no test: {line[:80]}"
        for path, name in named:
            if path not in defined:
                tree = ast.parse((REPO / path).read_text())
                defined[path] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in defined[path], f"{path}::{name} (named in docs/reliability.md) does not exist"

"""The one strict pydantic base every config model derives from, and the shared
identifier check.

Every section of the YAML is a `Strict` model: unknown keys are errors (a typo'd key
that is silently ignored is a monitor that silently does less) and values are frozen,
because the validated tree is passed down a whole run. Table and column names from
several sections go through `check_identifier`, so it lives here, below them all.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

# Identifiers from the config are always quoted by SQLAlchemy; this check only keeps
# out names that cannot be a sane table or column (quotes, semicolons, control chars).
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$ \-]{0,126}$")


def check_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid identifier "
            "(letters, digits, _, $, space and - only, starting with a letter or _)"
        )
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

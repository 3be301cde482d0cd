"""Prompt normalisation as the cost optimiser's cache potential does it in SQL
(aimon.tasks.costopt.cache), for apps that log a `prompt_hash` column instead of (or
beside) the prompt text: runs of ASCII whitespace become one space, the ends are
trimmed, and an optional template pattern becomes ``<var>``. With a `prompt_hash`
column the warehouse groups an id instead of normalising text: the fast path on big
days (docs/analyses/cost.md)."""

from __future__ import annotations

import hashlib
import re

WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")


def normalise(text: str, template_pattern: str | None = None) -> str:
    out = WHITESPACE.sub(" ", text).strip(" ")
    return re.sub(template_pattern, "<var>", out) if template_pattern else out


def prompt_hash(text: str, template_pattern: str | None = None) -> str:
    """md5 hex of the normalised prompt: the value to log in `prompt_hash`."""
    return hashlib.md5(normalise(text, template_pattern).encode(), usedforsecurity=False).hexdigest()

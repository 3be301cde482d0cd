"""The exception tree. Every error a user can cause says what failed and what to do.

AimonError
├── ConfigError      the YAML file, a key, a value (exit status 2)
├── ContractError    the warehouse does not hold what the data contract needs
└── StoreError       the metrics store cannot be read or written
"""

from __future__ import annotations


class AimonError(Exception):
    """Base class: `str(err)` is a complete, user-facing sentence."""

    exit_code = 1


class ConfigError(AimonError):
    exit_code = 2


class ContractError(AimonError):
    """A missing table or required column: the run cannot start."""


class StoreError(AimonError):
    pass

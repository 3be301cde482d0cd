"""What every notification channel shares: the Channel protocol, secrets read from the
environment or a Prefect Secret block, and masking of them in every message and log line
(the channels: aimon.tasks.alerts.channels)."""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Protocol

from aimon.errors import SendError

# Webhook URLs and tokens that may show up in a library's message: masked even when
# the secret was not read through this module.
_SECRET_PATTERNS = (
    re.compile(r"https://hooks\.slack\.com/\S+"),
    re.compile(r"xox[abposre]-[A-Za-z0-9-]+"),
)


class Channel(Protocol):
    name: str
    secrets: tuple[str, ...]

    def send(self, payload: dict[str, Any]) -> None: ...


def mask(text: str, channel: Channel | None = None) -> str:
    for secret in getattr(channel, "secrets", ()) or ():
        if secret:
            text = text.replace(secret, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub("***", text)
    return text


class _MaskSecrets(logging.Filter):
    """Rewrites a record with its secrets masked: slack-sdk's debug log prints the
    webhook URL and request headers."""

    def __init__(self, secrets: tuple[str, ...]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, "***")
        for pat in _SECRET_PATTERNS:
            text = pat.sub("***", text)
        record.msg, record.args = text, ()
        return True


def masked_logger(name: str, secrets: tuple[str, ...]) -> logging.Logger:
    logger = logging.getLogger(f"aimon.tasks.alerts.channels.{name}")
    for f in list(logger.filters):
        logger.removeFilter(f)
    logger.addFilter(_MaskSecrets(secrets))
    return logger


def resolve_secret(env: str | None, block: str | None, what: str) -> str:
    """The value of the environment variable `env`, or of the Prefect Secret block `block`."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise SendError(f"{what}: environment variable {env} is not set: export it", transient=False)
        return value
    if block:
        try:
            from prefect.blocks.system import Secret  # noqa: PLC0415  lazy: Prefect costs ~1 s to import

            return str(Secret.load(block).get())  # type: ignore[union-attr]
        except Exception as err:
            raise SendError(
                f"{what}: cannot load Prefect Secret block {block!r} ({type(err).__name__}): create it "
                f"with `prefect block register` or Secret(value=...).save({block!r})",
                transient=True,
            ) from None
    raise SendError(f"{what}: no secret configured", transient=False)

"""What leaves the process of prompts, responses and user ids (`capture.store_text`).

- `full`: the text as given; `masked` (the default): e-mail addresses, phone numbers,
  card-like numbers (13-19 digits passing the Luhn check), API keys and bearer tokens,
  and the configured patterns replaced by ``<email>``, ``<phone>``, ``<card>``,
  ``<secret>`` and ``<masked>``; `none`: no text at all.
- user ids: as given, or a keyed hash (HMAC-SHA256 with `user_id_key`, 32 hex digits),
  so a user's rows still group but the id cannot be read back.

Masking runs in the logger's flusher thread, before a row is written anywhere (the
sink, the spool, a span), never on the request path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Literal

StoreText = Literal["full", "masked", "none"]

# Order matters: secrets first (a bearer token holds digits a phone pattern would take).
_SECRET = re.compile(
    r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization header's token
    r"|\b(?:sk|pk|rk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic / Stripe style
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API keys
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # a JWT
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w])")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "<card>" if luhn(digits) else m.group(0)


def _phone(m: re.Match[str]) -> str:
    # 7 to 15 digits (E.164 allows 15): fewer is a number in the text, more is not a phone.
    # A date (2024-05-01, 01.05.2024) is not a phone.
    n = sum(ch.isdigit() for ch in m.group(0))
    return "<phone>" if 7 <= n <= 15 and not _DATE.fullmatch(m.group(0)) else m.group(0)


class Masker:
    """Applies `store_text` to texts and the keyed hash to user ids."""

    def __init__(
        self,
        store_text: StoreText = "masked",
        patterns: Sequence[str] = (),
        user_id_key: str | bytes | None = None,
    ):
        if store_text not in ("full", "masked", "none"):
            raise ValueError(f"capture.store_text must be full, masked or none, not {store_text!r}")
        self.store_text = store_text
        self.patterns = [re.compile(p) for p in patterns]
        self.key = user_id_key.encode() if isinstance(user_id_key, str) else user_id_key

    def text(self, value: str | None) -> str | None:
        if value is None or self.store_text == "full":
            return value
        if self.store_text == "none":
            return None
        return mask(value, self.patterns)

    def user_id(self, value: str | None) -> str | None:
        if value is None or self.key is None:
            return value
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:32]


def mask(text: str, patterns: Sequence[re.Pattern[str]] = ()) -> str:
    """`text` with secrets, e-mail addresses, card numbers, phone numbers and
    `patterns` replaced."""
    out = _SECRET.sub("<secret>", text)
    out = _EMAIL.sub("<email>", out)
    out = _CARD.sub(_card, out)
    out = _PHONE.sub(_phone, out)
    for p in patterns:
        out = p.sub("<masked>", out)
    return out

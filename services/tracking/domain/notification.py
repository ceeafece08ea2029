"""The customer's shipping email: which language, whether to send at all, when to try again."""

from __future__ import annotations

import re
from datetime import timedelta

# When the order did not say which store it came from.
STORE_FALLBACK = {"en": "our store", "pt-BR": "nossa loja"}

# Deliberately loose: one @, no spaces, a dot in the domain. The SMTP server has the last word.
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def language_for(locale: str | None) -> str:
    """pt, pt-BR, pt_br ... -> Brazilian Portuguese; everything else (or nothing) -> English."""
    if locale and locale.replace("_", "-").split("-")[0].strip().lower() == "pt":
        return "pt-BR"
    return "en"


def invalid_address_reason(address: str | None) -> str | None:
    if not address:
        return "the order has no customer email address"
    if len(address) > 254 or not _ADDRESS.match(address):
        return f"invalid customer email address: {address!r}"
    return None


def retry_delay(attempts: int, base_seconds: float, cap_seconds: float = 3600) -> timedelta:
    """Exponential backoff after the n-th failed attempt: base, 2 base, 4 base ... capped."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(attempts - 1, 0)))


def message_id(shipment_id: str, sender: str) -> str:
    """Derived from the shipment, so that a resend after a crash carries the same Message-ID as the first send."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    return f"<shipment-{shipment_id}@{domain}>"

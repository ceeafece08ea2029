"""Webhook signatures (Shopify, WooCommerce, AfterShip sign alike), checked on the raw body in constant time before
anything is parsed."""

from __future__ import annotations

import base64
import hashlib
import hmac


def hmac_sha256_base64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def valid_base64_hmac(secret: str, body: bytes, signature: str | None) -> bool:
    """Base64 HMAC-SHA256 of the raw body: X-Shopify-Hmac-Sha256, X-WC-Webhook-Signature, aftership-hmac-sha256."""
    if not signature:
        return False
    return hmac.compare_digest(hmac_sha256_base64(secret, body).encode(), signature.strip().encode())

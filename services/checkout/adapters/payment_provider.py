"""Card payments through a payment provider. `PaymentProvider` is what checkout needs of one; `StripeProvider`
speaks Stripe's API (PaymentIntents and refunds, form-encoded, with Idempotency-Key) over httpx. A PayPal adapter
would implement the same two calls.

Money is confirmed only by the provider's signed webhook: a charge is `processing` until then, unless the provider
refused it at once (a declined card), which is final.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Literal, Protocol

import httpx

from services.checkout.settings import CheckoutSettings, get_settings
from shared.money import Money


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered with a server error: safe to retry with the same key."""


class ProviderRejected(Exception):
    """The provider refused the request itself (not a decline): retrying the same request will not help."""


@dataclass(frozen=True)
class Charge:
    provider_ref: str
    status: Literal["processing", "succeeded", "failed"]
    failure_reason: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    provider_ref: str
    succeeded: bool
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    async def charge(
        self, *, amount: Money, payment_method: str, idempotency_key: str, metadata: dict[str, str]
    ) -> Charge: ...

    async def refund(self, *, provider_ref: str, amount: Money, idempotency_key: str) -> ProviderRefund: ...

    async def outcome(self, provider_ref: str) -> Charge:
        """Where a charge stands now: for charges whose confirmation never arrived."""
        ...


def minor_units(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


class StripeProvider:
    def __init__(self, settings: CheckoutSettings, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(base_url=settings.stripe_api_base, timeout=10)
        self._auth = {"Authorization": f"Bearer {settings.stripe_secret_key.get_secret_value()}"}

    async def _post(self, path: str, data: dict[str, str], idempotency_key: str) -> httpx.Response:
        try:
            response = await self._client.post(
                path, data=data, headers={**self._auth, "Idempotency-Key": idempotency_key}
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"Stripe could not be reached: {exc.__class__.__name__}") from exc
        if response.status_code >= 500 or response.status_code in (409, 429):  # 409: a concurrent same-key request
            raise ProviderUnavailable(f"Stripe answered {response.status_code}; retry later")
        return response

    async def charge(
        self, *, amount: Money, payment_method: str, idempotency_key: str, metadata: dict[str, str]
    ) -> Charge:
        data = {
            "amount": str(minor_units(amount.amount)),
            "currency": amount.currency.lower(),
            "payment_method": payment_method,
            "confirm": "true",
            **{f"metadata[{k}]": v for k, v in metadata.items()},
        }
        response = await self._post("/v1/payment_intents", data, idempotency_key)
        body = response.json()
        if response.status_code == 402:  # a card error: the intent exists and failed
            error = body["error"]
            return Charge(error["payment_intent"]["id"], "failed", error.get("message") or error.get("code"))
        if response.status_code != 200:
            raise ProviderRejected(body.get("error", {}).get("message", f"Stripe answered {response.status_code}"))
        return Charge(body["id"], "processing")

    async def outcome(self, provider_ref: str) -> Charge:
        try:
            response = await self._client.get(f"/v1/payment_intents/{provider_ref}", headers=self._auth)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"Stripe could not be reached: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise ProviderUnavailable(f"Stripe answered {response.status_code} for {provider_ref}")
        intent = response.json()
        if intent["status"] == "succeeded":
            return Charge(provider_ref, "succeeded")
        if intent["status"] in ("requires_payment_method", "canceled"):
            error = intent.get("last_payment_error") or {}
            return Charge(provider_ref, "failed", error.get("message") or f"the payment was {intent['status']}")
        return Charge(provider_ref, "processing")

    async def refund(self, *, provider_ref: str, amount: Money, idempotency_key: str) -> ProviderRefund:
        data = {"payment_intent": provider_ref, "amount": str(minor_units(amount.amount))}
        response = await self._post("/v1/refunds", data, idempotency_key)
        body = response.json()
        if response.status_code != 200:
            message = body.get("error", {}).get("message", f"Stripe answered {response.status_code}")
            return ProviderRefund("", False, message)
        failed = body["status"] in ("failed", "canceled")
        return ProviderRefund(body["id"], not failed, body.get("failure_reason") if failed else None)


@lru_cache
def default_provider() -> PaymentProvider:
    return StripeProvider(get_settings())


def valid_stripe_signature(secret: str, payload: bytes, header: str | None, *, tolerance: int = 300) -> bool:
    """Stripe-Signature `t=<unix>,v1=<hex>[,v1=...]`: hex HMAC-SHA256 of f"{t}.{payload}"; any v1 may match, and
    the timestamp must be within `tolerance` seconds of now (replays of old deliveries are refused)."""
    if not header:
        return False
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].strip().isdigit() or not signatures:
        return False
    t = timestamps[0].strip()
    if abs(time.time() - int(t)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)

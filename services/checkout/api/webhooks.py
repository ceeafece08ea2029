"""Stripe's webhook: authenticated by its signature, applied once however often and in whatever order it comes."""

from __future__ import annotations

import json
from decimal import Decimal

from fastapi import APIRouter, Request

from services.checkout import handlers
from services.checkout.adapters.payment_provider import valid_stripe_signature
from shared.errors import ProblemError
from shared.http import PROBLEM_RESPONSES, Engine
from shared.logging import get_logger
from shared.money import Money

log = get_logger(__name__)
router = APIRouter(responses=PROBLEM_RESPONSES)

OUTCOMES = {"payment_intent.succeeded": True, "payment_intent.payment_failed": False}


@router.post("/webhooks/stripe", tags=["webhooks"], summary="PaymentIntent outcomes from Stripe (signed)")
async def stripe_webhook(request: Request, engine: Engine) -> dict[str, str]:
    body = await request.body()
    secret = request.app.state.settings.stripe_webhook_secret.get_secret_value()
    if not valid_stripe_signature(secret, body, request.headers.get("stripe-signature")):
        raise ProblemError("the Stripe-Signature is missing, wrong or too old")
    try:
        event = json.loads(body)
        kind, intent = event["type"], event["data"]["object"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProblemError("the body is not a Stripe event") from exc
    if kind not in OUTCOMES:
        return {"outcome": "ignored"}
    amount = Money.of(Decimal(intent["amount"]) / 100, intent["currency"].upper())
    async with engine.begin() as conn:
        outcome = await handlers.settle_card_payment(
            conn,
            intent["id"],
            succeeded=OUTCOMES[kind],
            reason=(intent.get("last_payment_error") or {}).get("message"),
            amount=amount,
            checkout_id=(intent.get("metadata") or {}).get("checkout_id"),
        )
    log.info("stripe.webhook", event_id=event.get("id"), type=kind, outcome=outcome)
    return {"outcome": outcome}

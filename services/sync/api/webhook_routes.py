"""Store webhooks: the requests that come thousands a second. Their routes are DirectRoutes, served ahead of the
app's middleware stack and router."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from services.sync.api.schemas import WebhookAccepted
from services.sync.handlers import Ingested
from shared.http import PROBLEM_RESPONSES, DirectRoute

router = APIRouter(responses=PROBLEM_RESPONSES, route_class=DirectRoute)


@router.post(
    "/webhooks/shopify",
    tags=["webhooks"],
    response_model=WebhookAccepted,
    summary="Shopify order webhooks (HMAC-signed)",
    description="Headers: X-Shopify-Shop-Domain, X-Shopify-Topic, X-Shopify-Webhook-Id, X-Shopify-Hmac-Sha256."
    " Answered once the delivery is kept, and as a rule applied with it (see the store's deliveries).",
)
async def shopify_webhook(request: Request) -> Response:
    # The hot path reads its headers straight from the request: FastAPI's parameter machinery costs more here
    # than the work itself.
    headers = request.headers
    received = await request.app.state.webhooks.receive_shopify(
        shop_domain=headers.get("x-shopify-shop-domain"),
        topic=headers.get("x-shopify-topic"),
        webhook_id=headers.get("x-shopify-webhook-id"),
        signature=headers.get("x-shopify-hmac-sha256"),
        body=await request.body(),
    )
    return _answer(received)


@router.post(
    "/webhooks/woocommerce/{store_id}",
    tags=["webhooks"],
    response_model=WebhookAccepted,
    summary="WooCommerce order webhooks (HMAC-signed), and the unsigned creation ping",
    description="Headers: X-WC-Webhook-Topic, X-WC-Webhook-Signature."
    " Answered once the delivery is kept, and as a rule applied with it (see the store's deliveries).",
)
async def woocommerce_webhook(store_id: str, request: Request) -> Response:
    received = await request.app.state.webhooks.receive_woocommerce(
        store_id=store_id,
        topic=request.headers.get("x-wc-webhook-topic"),
        signature=request.headers.get("x-wc-webhook-signature"),
        body=await request.body(),
    )
    return _answer(received)


def _answer(received: Ingested) -> Response:
    """The answer as bytes (a WebhookAccepted, as documented): a Response is passed through, where a model would
    be validated and encoded again; two strings need no model to be encoded."""
    body = orjson.dumps({"outcome": received.outcome, "order_id": received.order_id})
    return Response(body, media_type="application/json")

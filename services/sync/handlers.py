"""Use cases of the sync service."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.tables import outbox, store_orders, stores, webhook_deliveries
from services.sync.domain import shopify
from shared.clock import utcnow
from shared.errors import Conflict, NotFound, Unauthorized, Unprocessable
from shared.events import OrderSynced, OrderSyncedPayload, StoreOrderCancelled, StoreOrderCancelledPayload
from shared.messaging.outbox import add_events
from shared.signatures import valid_base64_hmac

# Our order id for a store order is derived from the store and the store's id, so every delivery, retry or
# poll of the same store order maps to the same id, whichever instance handles it.
ORDER_ID_NAMESPACE = uuid.UUID("5b0f3b8e-8f0c-4a57-9a39-1f0c2b7d9e61")


def order_id_for(store_id: str, external_order_id: str) -> str:
    return str(uuid.uuid5(ORDER_ID_NAMESPACE, f"{store_id}:{external_order_id}"))


async def create_store(conn: AsyncConnection, box: SecretBox, merchant_id: str, values: dict) -> dict:
    credentials = {k: values.pop(k) for k in ("access_token", "consumer_key", "consumer_secret") if values.get(k)}
    try:
        row = (
            await conn.execute(
                insert(stores)
                .values(
                    id=str(uuid.uuid4()),
                    merchant_id=merchant_id,
                    platform=values["platform"],
                    shop_domain=values["shop_domain"],
                    name=values["name"],
                    credentials=box.seal(json.dumps(credentials)),
                    webhook_secret=box.seal(values["webhook_secret"]),
                )
                .returning(stores)
            )
        ).one()
    except IntegrityError as exc:
        raise Conflict(f"the {values['platform']} store {values['shop_domain']} is connected already") from exc
    return dict(row._mapping)


@dataclass(frozen=True)
class WebhookResult:
    outcome: str
    order_id: str | None = None


async def receive_shopify_webhook(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    shop_domain: str | None,
    topic: str | None,
    webhook_id: str | None,
    signature: str | None,
    body: bytes,
) -> WebhookResult:
    """Verify, deduplicate, normalise and record a Shopify delivery; the events leave through the outbox."""
    if not shop_domain:
        raise Unauthorized("X-Shopify-Shop-Domain is missing")
    store = (
        await conn.execute(
            select(stores).where(stores.c.platform == "shopify", stores.c.shop_domain == shop_domain.lower())
        )
    ).first()
    if store is None or not valid_base64_hmac(box.open(store.webhook_secret), body, signature):
        raise Unauthorized("the webhook signature does not match")  # same answer: do not reveal which shops exist
    if not webhook_id or not topic:
        raise Unprocessable("X-Shopify-Webhook-Id and X-Shopify-Topic are required")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedBody("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    first = (
        await conn.execute(
            pg_insert(webhook_deliveries)
            .values(store_id=store.id, delivery_key=webhook_id, topic=topic, outcome="received")
            .on_conflict_do_nothing()
            .returning(webhook_deliveries.c.delivery_key)
        )
    ).first()
    if first is None:
        return WebhookResult("duplicate")
    if topic == "app/uninstalled":
        await conn.execute(
            update(stores).where(stores.c.id == store.id).values(status="disconnected", status_reason="app uninstalled")
        )
        result = WebhookResult("store disconnected")
    elif topic in ("orders/create", "orders/paid", "orders/updated"):
        result = await _take_order(conn, store, data)
    elif topic == "orders/cancelled":
        result = await _cancel_order(conn, store, data)
    else:
        result = WebhookResult(f"ignored topic {topic}")
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.store_id == store.id, webhook_deliveries.c.delivery_key == webhook_id)
        .values(outcome=result.outcome)
    )
    return result


class MalformedBody(Unprocessable):
    status, title = 400, "Malformed body"


async def _take_order(conn: AsyncConnection, store, data: dict) -> WebhookResult:
    try:
        order = shopify.normalise(store.id, data)
    except shopify.UnusableOrder as exc:
        raise Unprocessable(str(exc), errors=[{"field": exc.field, "message": str(exc)}]) from exc
    order_id = order_id_for(store.id, order.external_order_id)
    held = (
        await conn.execute(
            select(store_orders.c.store_updated_at, store_orders.c.synced)
            .where(store_orders.c.store_id == store.id, store_orders.c.external_order_id == order.external_order_id)
            .with_for_update()
        )
    ).first()
    if held is not None and order.store_updated_at <= held.store_updated_at:
        return WebhookResult("stale: we hold a newer version", order_id)
    skipped = shopify.wanted(order)
    values = {
        "store_updated_at": order.store_updated_at,
        "financial_status": order.financial_status,
        "synced": "yes" if skipped is None else f"skipped: {skipped}",
        "payload": order.model_dump(mode="json"),
    }
    if held is None:
        await conn.execute(
            insert(store_orders).values(
                store_id=store.id, external_order_id=order.external_order_id, order_id=order_id, **values
            )
        )
    else:
        await conn.execute(
            update(store_orders)
            .where(store_orders.c.store_id == store.id, store_orders.c.external_order_id == order.external_order_id)
            .values(**values)
        )
    if skipped is not None:
        return WebhookResult(f"skipped: {skipped}", order_id)
    is_update = held is not None and held.synced == "yes"
    await add_events(
        conn,
        outbox,
        OrderSynced(
            merchant_id=store.merchant_id,
            order_id=order_id,
            payload=OrderSyncedPayload(order=order, is_update=is_update),
        ),
    )
    return WebhookResult("updated" if is_update else "synced", order_id)


async def _cancel_order(conn: AsyncConnection, store, data: dict) -> WebhookResult:
    external_id = str(data.get("id") or "")
    if not external_id:
        raise Unprocessable("id: is required", errors=[{"field": "id", "message": "is required"}])
    held = (
        await conn.execute(
            select(store_orders.c.order_id).where(
                store_orders.c.store_id == store.id, store_orders.c.external_order_id == external_id
            )
        )
    ).first()
    if held is None:
        return WebhookResult("ignored: order never synced")
    await add_events(
        conn,
        outbox,
        StoreOrderCancelled(
            merchant_id=store.merchant_id,
            order_id=held.order_id,
            payload=StoreOrderCancelledPayload(
                store_id=store.id,
                external_order_id=external_id,
                reason=data.get("cancel_reason"),
                cancelled_at=shopify.parse_time(data.get("cancelled_at")) or utcnow(),
            ),
        ),
    )
    return WebhookResult("cancelled", held.order_id)


async def get_store(conn: AsyncConnection, merchant_id: str, store_id: str) -> dict:
    row = (
        await conn.execute(select(stores).where(stores.c.id == store_id, stores.c.merchant_id == merchant_id))
    ).first()
    if row is None:
        raise NotFound(f"store {store_id} not found")
    return dict(row._mapping)

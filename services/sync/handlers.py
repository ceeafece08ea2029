"""Use cases of the sync service, each in the caller's transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.tables import (
    outbox,
    store_orders,
    stores,
    tracking_pushes,
    webhook_deliveries,
    webhook_failures,
)
from services.sync.domain import shopify, woocommerce
from services.sync.domain.parsing import Cancellation, UnusableOrder
from services.sync.domain.store_settings import StoreSettings, skip_reason
from shared.clock import utcnow
from shared.errors import Conflict, NotFound, Unauthorized, Unprocessable
from shared.events import (
    OrderShipped,
    OrderSynced,
    OrderSyncedPayload,
    StoreOrderCancelled,
    StoreOrderCancelledPayload,
)
from shared.logging import get_logger
from shared.messaging.outbox import add_events
from shared.signatures import valid_base64_hmac

log = get_logger(__name__)

# Our order id for a store order is derived from the store and the store's id, so every delivery, retry or
# poll of the same store order maps to the same id, whichever instance handles it.
ORDER_ID_NAMESPACE = uuid.UUID("5b0f3b8e-8f0c-4a57-9a39-1f0c2b7d9e61")
PLATFORMS = {"shopify": shopify, "woocommerce": woocommerce}
CREDENTIAL_FIELDS = ("access_token", "consumer_key", "consumer_secret")


def order_id_for(store_id: str, external_order_id: str) -> str:
    return str(uuid.uuid5(ORDER_ID_NAMESPACE, f"{store_id}:{external_order_id}"))


# --- stores ----------------------------------------------------------------------------------------------------


def default_api_url(shop_domain: str) -> str:
    return f"https://{shop_domain}"


def _checked_api_url(api_url: str, *, allow_http: bool) -> str:
    if not api_url.startswith("https://") and not (allow_http and api_url.startswith("http://")):
        raise Unprocessable("api_url must be an https:// URL", errors=[{"field": "api_url", "message": "not https"}])
    return api_url.rstrip("/")


async def create_store(
    conn: AsyncConnection, box: SecretBox, merchant_id: str, values: dict, *, allow_http: bool = False
) -> dict:
    credentials = {k: values.pop(k) for k in CREDENTIAL_FIELDS if values.get(k)}
    api_url = _checked_api_url(values.get("api_url") or default_api_url(values["shop_domain"]), allow_http=allow_http)
    try:
        row = (
            await conn.execute(
                insert(stores)
                .values(
                    id=str(uuid.uuid4()),
                    merchant_id=merchant_id,
                    platform=values["platform"],
                    shop_domain=values["shop_domain"],
                    api_url=api_url,
                    name=values["name"],
                    credentials=box.seal(json.dumps(credentials)),
                    webhook_secret=box.seal(values["webhook_secret"]),
                    settings=StoreSettings().model_dump(mode="json"),
                )
                .returning(stores)
            )
        ).one()
    except IntegrityError as exc:
        raise Conflict(f"the {values['platform']} store {values['shop_domain']} is connected already") from exc
    return dict(row._mapping)


async def get_store(conn: AsyncConnection, merchant_id: str, store_id: str, *, lock: bool = False) -> Row:
    query = select(stores).where(stores.c.id == store_id, stores.c.merchant_id == merchant_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None or row.status == "removed":
        raise NotFound(f"store {store_id} not found")
    return row


async def update_store(
    conn: AsyncConnection, box: SecretBox, merchant_id: str, store_id: str, values: dict, *, allow_http: bool = False
) -> dict:
    """Rename, move, or give new credentials; new credentials reconnect a disconnected store."""
    store = await get_store(conn, merchant_id, store_id, lock=True)
    changes: dict = {}
    if values.get("name"):
        changes["name"] = values["name"]
    if values.get("api_url"):
        changes["api_url"] = _checked_api_url(values["api_url"], allow_http=allow_http)
    credentials = {k: values[k] for k in CREDENTIAL_FIELDS if values.get(k)}
    if credentials:
        merged = {**json.loads(box.open(store.credentials)), **credentials}
        needed = ("access_token",) if store.platform == "shopify" else ("consumer_key", "consumer_secret")
        if any(not merged.get(k) for k in needed):
            raise Unprocessable(f"a {store.platform} store needs {' and '.join(needed)}")
        changes.update(credentials=box.seal(json.dumps(merged)), status="connected", status_reason=None)
    if values.get("webhook_secret"):
        changes["webhook_secret"] = box.seal(values["webhook_secret"])
    if changes:
        store = (
            await conn.execute(update(stores).where(stores.c.id == store_id).values(**changes).returning(stores))
        ).one()
    return dict(store._mapping)


async def remove_store(conn: AsyncConnection, box: SecretBox, merchant_id: str, store_id: str) -> None:
    """Disconnect for good: the credentials and webhook secret are erased, the order history stays."""
    await get_store(conn, merchant_id, store_id, lock=True)
    await conn.execute(
        update(stores)
        .where(stores.c.id == store_id)
        .values(
            status="removed",
            status_reason="removed by the merchant",
            credentials=box.seal("{}"),
            webhook_secret=box.seal(""),
            # Frees the shop for a new connection; the old row keeps its orders.
            shop_domain=stores.c.shop_domain + "#removed:" + store_id,
        )
    )


async def put_settings(conn: AsyncConnection, merchant_id: str, store_id: str, values: StoreSettings) -> StoreSettings:
    await get_store(conn, merchant_id, store_id, lock=True)
    await conn.execute(update(stores).where(stores.c.id == store_id).values(settings=values.model_dump(mode="json")))
    return values


async def mark_disconnected(conn: AsyncConnection, store_id: str, reason: str) -> None:
    await conn.execute(
        update(stores)
        .where(stores.c.id == store_id, stores.c.status == "connected")
        .values(status="disconnected", status_reason=reason)
    )
    log.warning("store.disconnected", store_id=store_id, reason=reason)


# --- store orders in (webhooks and polling share this path) ----------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    outcome: str
    order_id: str | None = None
    store_updated_at: datetime | None = None


class MalformedBody(Unprocessable):
    status, title = 400, "Malformed body"


class RejectedPayload(Unprocessable):
    """The payload parses but lacks what we need: the caller keeps it in the dead-letter table."""

    def __init__(self, store: Row, topic: str, exc: UnusableOrder) -> None:
        super().__init__(str(exc), errors=[{"field": exc.field, "message": str(exc)}])
        self.store_id, self.merchant_id, self.topic, self.field = store.id, store.merchant_id, topic, exc.field


async def record_rejected_payload(conn: AsyncConnection, rejected: RejectedPayload, body: bytes) -> None:
    await conn.execute(
        insert(webhook_failures).values(
            id=str(uuid.uuid4()),
            store_id=rejected.store_id,
            merchant_id=rejected.merchant_id,
            topic=rejected.topic,
            field=rejected.field,
            error=rejected.detail,
            payload=body.decode("utf-8", errors="replace"),
        )
    )


async def ingest_order(
    conn: AsyncConnection, store: Row, data: dict, *, topic: str, cancelled: bool = False
) -> Ingested:
    """Normalise a store order and record it; a new or changed wanted order is published as OrderSynced, a
    store-side cancellation of an order we published as StoreOrderCancelled. Older versions change nothing."""
    platform = PLATFORMS[store.platform]
    try:
        cancellation = platform.cancellation(data)
        if cancellation is None and cancelled:
            cancellation = Cancellation(str(shopify.require(data, "id")), data.get("cancel_reason"), None)
        if cancellation is not None:
            return await _cancel_order(conn, store, cancellation)
        order = platform.normalise(store.id, data)
    except UnusableOrder as exc:
        raise RejectedPayload(store, topic, exc) from exc
    settings = StoreSettings.model_validate(store.settings)
    order = order.model_copy(update={"store_name": store.name, "customer_notified_by_store": settings.notify_customer})
    order_id = order_id_for(store.id, order.external_order_id)
    skipped = skip_reason(order, settings)
    values = {
        "store_updated_at": order.store_updated_at,
        "financial_status": order.financial_status,
        "synced": "yes" if skipped is None else f"skipped: {skipped}",
        "payload": order.model_dump(mode="json"),
    }
    key = (store_orders.c.store_id == store.id, store_orders.c.external_order_id == order.external_order_id)
    # Insert first: most deliveries bring a new order, and a concurrent delivery of the same order waits here.
    inserted = (
        await conn.execute(
            pg_insert(store_orders)
            .values(store_id=store.id, external_order_id=order.external_order_id, order_id=order_id, **values)
            .on_conflict_do_nothing()
            .returning(store_orders.c.order_id)
        )
    ).first()
    held = None
    if inserted is None:
        held = (
            await conn.execute(
                select(store_orders.c.store_updated_at, store_orders.c.synced).where(*key).with_for_update()
            )
        ).one()
        if held.synced == "cancelled" or order.store_updated_at <= held.store_updated_at:
            return Ingested("stale: we hold this version or a newer one", order_id, order.store_updated_at)
        if skipped is not None and held.synced == "yes":
            # Published already: a later version the settings would not take in (e.g. fulfilled by our own
            # tracking write-back) must not make us forget it, or its store-side cancellation is never told.
            values["synced"] = "yes"
        await conn.execute(update(store_orders).where(*key).values(**values))
    if skipped is not None:
        return Ingested(f"skipped: {skipped}", order_id, order.store_updated_at)
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
    return Ingested("updated" if is_update else "synced", order_id, order.store_updated_at)


async def _cancel_order(conn: AsyncConnection, store: Row, cancellation: Cancellation) -> Ingested:
    key = (store_orders.c.store_id == store.id, store_orders.c.external_order_id == cancellation.external_order_id)
    held = (
        await conn.execute(select(store_orders.c.order_id, store_orders.c.synced).where(*key).with_for_update())
    ).first()
    if held is None:
        return Ingested("ignored: order never synced", None, cancellation.cancelled_at)
    if held.synced == "cancelled":
        return Ingested("stale: cancelled already", held.order_id, cancellation.cancelled_at)
    await conn.execute(update(store_orders).where(*key).values(synced="cancelled"))
    if held.synced == "yes":  # the orders service knows it: tell it
        await add_events(
            conn,
            outbox,
            StoreOrderCancelled(
                merchant_id=store.merchant_id,
                order_id=held.order_id,
                payload=StoreOrderCancelledPayload(
                    store_id=store.id,
                    external_order_id=cancellation.external_order_id,
                    reason=cancellation.reason,
                    cancelled_at=cancellation.cancelled_at or utcnow(),
                ),
            ),
        )
    return Ingested("cancelled", held.order_id, cancellation.cancelled_at)


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedBody("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data


async def _record_delivery(conn: AsyncConnection, store_id: str, key: str, topic: str, outcome: str) -> bool:
    """False when this delivery was recorded before. It is recorded after its effect, in the same transaction:
    a redelivery changes nothing anyway (its order version is not newer than the one held), so the dedupe costs
    one statement, and a concurrent copy waits on the first one's rows."""
    return (
        await conn.execute(
            pg_insert(webhook_deliveries)
            .values(store_id=store_id, delivery_key=key, topic=topic, outcome=outcome)
            .on_conflict_do_nothing()
            .returning(webhook_deliveries.c.delivery_key)
        )
    ).first() is not None


def _verified(box: SecretBox, store: Row | None, body: bytes, signature: str | None) -> Row:
    if (
        store is None
        or store.status == "removed"
        or not valid_base64_hmac(box.open(store.webhook_secret), body, signature)
    ):
        raise Unauthorized("the webhook signature does not match")  # same answer: do not reveal which shops exist
    return store


async def receive_shopify_webhook(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    shop_domain: str | None,
    topic: str | None,
    webhook_id: str | None,
    signature: str | None,
    body: bytes,
) -> Ingested:
    """Verify, deduplicate, normalise and record a Shopify delivery; the events leave through the outbox."""
    if not shop_domain:
        raise Unauthorized("X-Shopify-Shop-Domain is missing")
    found = (
        await conn.execute(
            select(stores).where(stores.c.platform == "shopify", stores.c.shop_domain == shop_domain.lower())
        )
    ).first()
    store = _verified(box, found, body, signature)
    if not webhook_id or not topic:
        raise Unprocessable("X-Shopify-Webhook-Id and X-Shopify-Topic are required")
    data = _json_object(body)
    if topic == "app/uninstalled":
        await mark_disconnected(conn, store.id, "the app was uninstalled from the store")
        result = Ingested("store disconnected")
    elif topic in ("orders/create", "orders/paid", "orders/updated", "orders/cancelled"):
        result = await ingest_order(conn, store, data, topic=topic, cancelled=topic == "orders/cancelled")
    else:
        result = Ingested(f"ignored topic {topic}")
    if not await _record_delivery(conn, store.id, webhook_id, topic, result.outcome):
        return Ingested("duplicate", result.order_id)
    return result


async def receive_woocommerce_webhook(
    conn: AsyncConnection,
    box: SecretBox,
    *,
    store_id: str,
    topic: str | None,
    signature: str | None,
    body: bytes,
) -> Ingested:
    found = (
        await conn.execute(select(stores).where(stores.c.id == store_id, stores.c.platform == "woocommerce"))
    ).first()
    if found is not None and found.status != "removed" and signature is None and body.startswith(b"webhook_id="):
        return Ingested("ping")  # WooCommerce's unsigned creation ping: it disables a webhook that does not get 200
    store = _verified(box, found, body, signature)
    if topic not in ("order.created", "order.updated", "order.deleted"):
        return Ingested(f"ignored topic {topic}")
    data = _json_object(body)
    try:
        key = woocommerce.delivery_key(data, topic)
    except UnusableOrder as exc:
        raise RejectedPayload(store, topic, exc) from exc
    result = await ingest_order(conn, store, data, topic=topic, cancelled=topic == "order.deleted")
    if not await _record_delivery(conn, store.id, key, topic, result.outcome):
        return Ingested("duplicate", result.order_id)
    return result


# --- tracking out ----------------------------------------------------------------------------------------------


async def on_order_shipped(conn: AsyncConnection, event: OrderShipped) -> None:
    """Queue the store write-back in the transaction that records the event; a background loop performs it."""
    held = (
        await conn.execute(
            select(store_orders.c.store_id, store_orders.c.external_order_id, stores.c.merchant_id)
            .join(stores, stores.c.id == store_orders.c.store_id)
            .where(store_orders.c.order_id == event.order_id)
        )
    ).first()
    if held is None:
        log.warning("writeback.unknown_order", order_id=event.order_id)
        return
    p = event.payload
    await conn.execute(
        pg_insert(tracking_pushes)
        .values(
            id=str(uuid.uuid4()),
            shipment_id=p.shipment_id,
            store_id=held.store_id,
            merchant_id=held.merchant_id,
            order_id=event.order_id,
            external_order_id=held.external_order_id,
            reshipment_id=p.reshipment_id,
            carrier=p.carrier,
            tracking_number=p.tracking_number,
        )
        .on_conflict_do_nothing(index_elements=[tracking_pushes.c.shipment_id])
    )


async def retry_push(conn: AsyncConnection, merchant_id: str, push_id: str) -> Row:
    row = (
        await conn.execute(
            select(tracking_pushes)
            .where(tracking_pushes.c.id == push_id, tracking_pushes.c.merchant_id == merchant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"tracking push {push_id} not found")
    if row.status == "done":
        raise Conflict("the tracking reached the store already", current_status=row.status)
    return (
        await conn.execute(
            update(tracking_pushes)
            .where(tracking_pushes.c.id == push_id)
            .values(status="pending", next_attempt_at=utcnow())
            .returning(tracking_pushes)
        )
    ).one()

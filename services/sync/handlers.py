"""Use cases of the sync service, each in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

import orjson
from sqlalchemy import Update, any_, insert, select, text, update
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
    webhook_failures,
)
from services.sync.domain import shopify, woocommerce
from services.sync.domain.parsing import Cancellation, UnusableOrder, parse_time
from services.sync.domain.store_settings import StoreSettings, skip_reason
from shared.clock import utcnow
from shared.db import insert_records, records, text_array
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events import (
    IntegrationEvent,
    OrderShipped,
    OrderSynced,
    OrderSyncedPayload,
    StoreOrder,
    StoreOrderCancelled,
    StoreOrderCancelledPayload,
)
from shared.logging import bind_correlation_id, get_logger
from shared.messaging.outbox import add_events

log = get_logger(__name__)

# Our order id for a store order is derived from the store and the store's id, so every delivery, retry or
# poll of the same store order maps to the same id, whichever instance handles it.
ORDER_ID_NAMESPACE = uuid.UUID("5b0f3b8e-8f0c-4a57-9a39-1f0c2b7d9e61")
_NAMESPACE_BYTES = ORDER_ID_NAMESPACE.bytes
PLATFORMS = {"shopify": shopify, "woocommerce": woocommerce}
CREDENTIAL_FIELDS = ("access_token", "consumer_key", "consumer_secret")


def order_id_for(store_id: str, external_order_id: str) -> str:
    """str(uuid.uuid5(ORDER_ID_NAMESPACE, f"{store_id}:{external_order_id}")), without building a UUID object:
    called twice per webhook, where uuid5 and str(UUID) cost more than the hash."""
    name = f"{store_id}:{external_order_id}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # the RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


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


async def remove_store(conn: AsyncConnection, box: SecretBox, merchant_id: str, store_id: str) -> Row:
    """Disconnect for good: the credentials and webhook secret are erased, the order history stays. Returns the
    store as it was."""
    store = await get_store(conn, merchant_id, store_id, lock=True)
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
    return store


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


StoreChange = StoreOrder | Cancellation


def read_store_order(store: Row, data: dict, topic: str, *, cancelled: bool = False) -> StoreChange:
    """A store payload as a new version of an order, or as its cancellation (also a whole order payload that
    carries a cancellation, or one delivered on a cancellation topic)."""
    platform = PLATFORMS[store.platform]
    try:
        cancellation = platform.cancellation(data)
        if cancellation is None and cancelled:
            cancellation = Cancellation(str(shopify.require(data, "id")), data.get("cancel_reason"), None)
        return cancellation or platform.normalise(store.id, data)
    except UnusableOrder as exc:
        raise RejectedPayload(store, topic, exc) from exc


def _json_value(order: StoreOrder) -> orjson.Fragment:
    """An order as a JSON column value: pydantic's JSON text, which shared.db's orjson encoder inlines (half the cost
    of a dict that is encoded again)."""
    return orjson.Fragment(order.model_dump_json())


def change_to_json(change: StoreChange) -> dict:
    if isinstance(change, Cancellation):
        return {
            "cancellation": {**asdict(change), "cancelled_at": change.cancelled_at and change.cancelled_at.isoformat()}
        }
    return {"order": _json_value(change)}


def change_from_json(data: dict) -> StoreChange:
    if "cancellation" in data:
        c = data["cancellation"]
        return Cancellation(c["external_order_id"], c["reason"], parse_time(c["cancelled_at"]))
    return StoreOrder.model_validate(data["order"])


@dataclass
class _Held:
    """A store order as this batch sees it: read once, changed in memory, written once."""

    order_id: str
    store_id: str
    external_order_id: str
    store_updated_at: datetime
    synced: str
    new: bool = False
    version: dict | None = None  # the columns of a newer order version, to write
    cancelled: bool = False


async def record_store_orders(
    conn: AsyncConnection, changes: list[tuple[Row, StoreChange]], correlation_ids: list[str | None] | None = None
) -> list[Ingested]:
    """Apply store order versions and cancellations, in their order, with a few statements for the whole list.

    A new or changed wanted order is published as OrderSynced; a cancellation of an order we published as
    StoreOrderCancelled; a version not newer than the one held changes nothing, so redeliveries, shuffled
    deliveries and polls of the same order agree. Every writer of a store's orders (webhook appliers, sync jobs,
    on any instance) holds that store's advisory lock until it commits, taken in one order: what is read here
    stays true until the writes. Each change's events carry its correlation id, when given (that of the webhook
    request that brought it)."""
    if not changes:
        return []
    await conn.execute(_LOCK_STORES, {"stores": sorted({store.id for store, _ in changes})})
    wanted_ids = [order_id_for(store.id, change.external_order_id) for store, change in changes]
    held: dict[str, _Held] = {row.order_id: _Held(*row) for row in await conn.execute(_HELD, {"order_ids": wanted_ids})}
    stores_of = {store.id: store for store, _ in changes}  # read each store's settings once, not once per change
    settings = {store_id: StoreSettings.model_validate(store.settings) for store_id, store in stores_of.items()}
    events: list[IntegrationEvent] = []
    results = []
    for i, ((store, change), order_id) in enumerate(zip(changes, wanted_ids, strict=True)):
        if correlation_ids:
            bind_correlation_id(correlation_ids[i])
        if isinstance(change, Cancellation):
            result = _cancel(store, change, order_id, held, events)
        else:
            result = _take_version(store, settings[store.id], change, order_id, held, events)
        results.append(result)
    await _write(conn, held.values())
    await add_events(conn, outbox, *events)
    return results


def _update_versions() -> Update:
    """Newer versions of held store orders, given as {"records": [row dicts]}: one statement for any number."""
    version = records(store_orders)
    return (
        update(store_orders)
        .where(store_orders.c.order_id == version.c.order_id)
        .values({name: version.c[name] for name in ("store_updated_at", "synced", "financial_status", "payload")})
    )


# Built once: one prepared statement each, whatever the batch size (an executemany runs once per row), and no
# statement construction or cache key per batch.
_LOCK_STORES = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(s, 0))"
    " FROM (SELECT unnest(CAST(:stores AS text[])) AS s ORDER BY 1) AS ordered"
)
_HELD = select(
    store_orders.c.order_id,
    store_orders.c.store_id,
    store_orders.c.external_order_id,
    store_orders.c.store_updated_at,
    store_orders.c.synced,
).where(store_orders.c.order_id == any_(text_array("order_ids")))
_CANCEL = (
    update(store_orders).where(store_orders.c.order_id == any_(text_array("order_ids"))).values(synced="cancelled")
)
_INSERT_NEW = insert_records(
    store_orders,
    "order_id",
    "store_id",
    "external_order_id",
    "store_updated_at",
    "synced",
    "financial_status",
    "payload",
)
_UPDATE_VERSIONS = _update_versions()


async def _write(conn: AsyncConnection, held: Iterable[_Held]) -> None:
    """One statement per kind of write: new store orders, newer versions, cancellations of held versions."""
    new, versions, cancelled = [], [], []
    for h in held:
        if h.version is not None:
            row = {
                "order_id": h.order_id,
                "store_id": h.store_id,
                "external_order_id": h.external_order_id,
                "store_updated_at": h.store_updated_at,
                "synced": h.synced,
                **h.version,
            }
            (new if h.new else versions).append(row)
        elif h.cancelled:
            cancelled.append(h.order_id)
    if new:
        await conn.execute(_INSERT_NEW, {"records": new})
    if versions:
        await conn.execute(_UPDATE_VERSIONS, {"records": versions})
    if cancelled:
        await conn.execute(_CANCEL, {"order_ids": cancelled})


def _take_version(
    store: Row, settings: StoreSettings, order: StoreOrder, order_id: str, held: dict[str, _Held], events: list
) -> Ingested:
    order = order.model_copy(update={"store_name": store.name, "customer_notified_by_store": settings.notify_customer})
    skipped = skip_reason(order, settings)
    synced = "yes" if skipped is None else f"skipped: {skipped}"
    current = held.get(order_id)
    if current is not None and (current.synced == "cancelled" or order.store_updated_at <= current.store_updated_at):
        return Ingested("stale: we hold this version or a newer one", order_id, order.store_updated_at)
    is_update = current is not None and current.synced == "yes"
    if current is None:
        current = held[order_id] = _Held(
            order_id, store.id, order.external_order_id, order.store_updated_at, synced, new=True
        )
    elif skipped is not None and is_update:
        # Published already: a later version the settings would not take in (e.g. fulfilled by our own tracking
        # write-back) must not make us forget it, or its store-side cancellation is never told.
        synced = "yes"
    current.store_updated_at, current.synced = order.store_updated_at, synced
    current.version = {"financial_status": order.financial_status, "payload": _json_value(order)}
    if skipped is not None:
        return Ingested(f"skipped: {skipped}", order_id, order.store_updated_at)
    events.append(
        OrderSynced(
            merchant_id=store.merchant_id,
            order_id=order_id,
            payload=OrderSyncedPayload(order=order, is_update=is_update),
        )
    )
    return Ingested("updated" if is_update else "synced", order_id, order.store_updated_at)


def _cancel(store: Row, cancellation: Cancellation, order_id: str, held: dict[str, _Held], events: list) -> Ingested:
    current = held.get(order_id)
    if current is None:
        # Cancelled before any version reached us (deliveries out of order, or an old order found by a sync):
        # remember it, so that a late older version does not bring the order in.
        at = cancellation.cancelled_at or utcnow()
        current = held[order_id] = _Held(
            order_id, store.id, cancellation.external_order_id, at, "cancelled", new=True, cancelled=True
        )
        current.version = {"financial_status": "unknown", "payload": change_to_json(cancellation)}
        return Ingested("skipped: cancelled in the store before it was synced", order_id, at)
    if current.synced == "cancelled":
        return Ingested("stale: cancelled already", order_id, cancellation.cancelled_at)
    was_published = current.synced == "yes"
    current.synced, current.cancelled = "cancelled", True
    if was_published:  # the orders service knows it: tell it
        events.append(
            StoreOrderCancelled(
                merchant_id=store.merchant_id,
                order_id=order_id,
                payload=StoreOrderCancelledPayload(
                    store_id=store.id,
                    external_order_id=cancellation.external_order_id,
                    reason=cancellation.reason,
                    cancelled_at=cancellation.cancelled_at or utcnow(),
                ),
            ),
        )
    return Ingested("cancelled", order_id, cancellation.cancelled_at)


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

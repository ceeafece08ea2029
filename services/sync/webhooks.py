"""Store webhooks: accepted fast, applied in batches.

Accepting a delivery checks its signature on the raw body, reads it into a store order version or cancellation
(a payload we cannot use is refused with 422 and kept), and commits it to the inbox, deduplicated by its delivery
key, before answering 200. Deliveries arriving together are applied together in the transaction that keeps them,
with `handlers.record_store_orders`, the path sync jobs use too; their events leave through the outbox. A group
that fails to apply is kept unapplied, and so is what a crash leaves behind if another instance kept it that way:
the applier loop takes such waiting deliveries, oldest first, many per transaction, on any instance, and sets aside
one that cannot be applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import orjson
from fastapi import FastAPI
from sqlalchemy import Update, any_, bindparam, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.sync import handlers
from services.sync.adapters.inbox import Delivery, DeliveryInbox, StoreDirectory
from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.tables import stores, webhook_deliveries, webhook_failures
from services.sync.domain import woocommerce
from services.sync.domain.parsing import UnusableOrder
from services.sync.handlers import Ingested
from shared.db import prune, records, text_array, unavailable
from shared.errors import Unauthorized, Unprocessable
from shared.logging import correlation_id, get_logger
from shared.service import every_hour
from shared.signatures import valid_base64_hmac

log = get_logger(__name__)

APPLY_BATCH = 100  # deliveries per applying transaction
APPLY_IDLE_SECONDS = 0.5  # how often an idle applier looks for deliveries other instances accepted
SHOPIFY_ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled")
WOOCOMMERCE_ORDER_TOPICS = ("order.created", "order.updated", "order.deleted")


class MalformedBody(Unprocessable):
    status, title = 400, "Malformed body"


@dataclass
class Webhooks:
    """What receiving and applying deliveries needs; one per process."""

    engine: AsyncEngine
    box: SecretBox
    directory: StoreDirectory = field(init=False)
    inbox: DeliveryInbox = field(init=False)
    arrived: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.directory = StoreDirectory(self.engine)
        self.inbox = DeliveryInbox(self.engine, record_deliveries, _waiting_payload, on_waiting=self.arrived.set)

    async def _verified(self, platform: str, key: str, body: bytes, signature: str | None) -> Row:
        store = await self.directory.find(platform, key)
        if store is not None and not self._signed(store, body, signature):
            store = await self.directory.find(platform, key, fresh=True)  # the webhook secret may have changed
        if store is None or store.status == "removed" or not self._signed(store, body, signature):
            raise Unauthorized("the webhook signature does not match")  # one answer: do not reveal which shops exist
        return store

    def _signed(self, store: Row, body: bytes, signature: str | None) -> bool:
        return valid_base64_hmac(self.box.open(store.webhook_secret), body, signature)

    async def _keep(self, rejected: handlers.RejectedPayload, body: bytes) -> None:
        """A payload we cannot use is kept, in a transaction of its own, for the merchant and ops to see."""
        async with self.engine.begin() as conn:
            await handlers.record_rejected_payload(conn, rejected, body)

    async def _accept(self, store: Row, key: str, topic: str, data: dict, body: bytes, *, cancelled: bool) -> Ingested:
        try:
            change = handlers.read_store_order(store, data, topic, cancelled=cancelled)
        except handlers.RejectedPayload as rejected:
            await self._keep(rejected, body)
            raise
        # The request's correlation id goes with the delivery, so the events it leads to carry it.
        delivery = Delivery(store.id, key, topic, change.external_order_id, change, correlation_id())
        accepted = await self.inbox.accept(delivery)
        return Ingested(
            "accepted" if accepted else "duplicate", handlers.order_id_for(store.id, delivery.external_order_id)
        )

    async def receive_shopify(
        self, *, shop_domain: str | None, topic: str | None, webhook_id: str | None, signature: str | None, body: bytes
    ) -> Ingested:
        if not shop_domain:
            raise Unauthorized("X-Shopify-Shop-Domain is missing")
        store = await self._verified("shopify", shop_domain.lower(), body, signature)
        if not webhook_id or not topic:
            raise Unprocessable("X-Shopify-Webhook-Id and X-Shopify-Topic are required")
        data = _json_object(body)
        if topic == "app/uninstalled":
            async with self.engine.begin() as conn:
                await handlers.mark_disconnected(conn, store.id, "the app was uninstalled from the store")
            self.directory.forget(store.id, store.shop_domain)
            return Ingested("store disconnected")
        if topic not in SHOPIFY_ORDER_TOPICS:
            return Ingested(f"ignored topic {topic}")
        return await self._accept(store, webhook_id, topic, data, body, cancelled=topic == "orders/cancelled")

    async def receive_woocommerce(
        self, *, store_id: str, topic: str | None, signature: str | None, body: bytes
    ) -> Ingested:
        if signature is None and body.startswith(b"webhook_id="):
            found = await self.directory.find("woocommerce", store_id)
            if found is not None and found.status != "removed":
                return Ingested("ping")  # WooCommerce's unsigned creation ping: a webhook not answered 200 is disabled
        store = await self._verified("woocommerce", store_id, body, signature)
        if topic not in WOOCOMMERCE_ORDER_TOPICS:
            return Ingested(f"ignored topic {topic}")
        data = _json_object(body)
        try:
            key = woocommerce.delivery_key(data, topic)
        except UnusableOrder as exc:
            rejected = handlers.RejectedPayload(store, topic, exc)
            await self._keep(rejected, body)
            raise rejected from exc
        return await self._accept(store, key, topic, data, body, cancelled=topic == "order.deleted")


def _json_object(body: bytes) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data


async def apply_waiting(conn: AsyncConnection, limit: int = APPLY_BATCH) -> int:
    """Apply up to `limit` accepted deliveries, oldest first; returns how many. Other instances skip the rows this
    transaction holds."""
    waiting = await _claim(conn, limit)
    await _apply(conn, waiting)
    return len(waiting)


async def apply_or_set_aside_oldest(conn: AsyncConnection) -> int:
    """The careful path after a failed batch: the oldest delivery alone; if it cannot be applied it is marked
    failed (its payload kept for ops), so it does not hold up the others."""
    waiting = await _claim(conn, 1)
    try:
        async with conn.begin_nested():
            await _apply(conn, waiting)
    except Exception as exc:
        if unavailable(exc):
            raise
        log.error("webhooks.delivery_set_aside", delivery_key=waiting[0].delivery_key, error=repr(exc))
        await _mark(conn, waiting, [f"failed: {exc!r}"[:1000]], keep_payload=True)
    return len(waiting)


# Built once, with their values as parameters: a statement built per call costs its construction and its cache
# key on every batch.
_CLAIM = (
    select(
        webhook_deliveries.c.store_id,
        webhook_deliveries.c.delivery_key,
        webhook_deliveries.c.topic,
        webhook_deliveries.c.external_order_id,
        webhook_deliveries.c.payload,
    )
    .where(webhook_deliveries.c.applied_at.is_(None))
    .order_by(webhook_deliveries.c.received_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
# An array, not an IN list: one statement text whatever the number of stores.
_STORES = select(stores).where(stores.c.id == any_(text_array("store_ids")))


async def _claim(conn: AsyncConnection, limit: int) -> list[Row]:
    return (await conn.execute(_CLAIM, {"limit": limit})).all()


async def _apply(conn: AsyncConnection, waiting: list[Row]) -> None:
    if not waiting:
        return
    deliveries = [
        Delivery(*w[:4], handlers.change_from_json(w.payload), w.payload.get("correlation_id")) for w in waiting
    ]
    await _mark(conn, waiting, await record_deliveries(conn, deliveries))


async def record_deliveries(conn: AsyncConnection, deliveries: list[Delivery]) -> list[str]:
    """Apply deliveries in order; returns what each one did. Their stores are read again: the one a webhook was
    checked against may be up to STORE_CACHE_SECONDS old, and a removed store's deliveries are ignored."""
    found = {s.id: s for s in await conn.execute(_STORES, {"store_ids": list({d.store_id for d in deliveries})})}
    live = [d for d in deliveries if found[d.store_id].status != "removed"]
    results = await handlers.record_store_orders(
        conn, [(found[d.store_id], d.change) for d in live], [d.correlation_id for d in live]
    )
    outcomes = {id(d): r.outcome for d, r in zip(live, results, strict=True)}
    return [outcomes.get(id(d), "ignored: the store was removed") for d in deliveries]


def _waiting_payload(delivery: Delivery) -> dict:
    """What a delivery kept unapplied stores: the applier reads its change and correlation id back from it."""
    return {**handlers.change_to_json(delivery.change), "correlation_id": delivery.correlation_id}


def _marking(*, keep_payload: bool) -> Update:
    """Each delivery's outcome, given as {"records": [{store_id, delivery_key, outcome}]}, in one statement. An
    applied delivery's payload is dropped; a failed one keeps it for ops."""
    marked = records(webhook_deliveries)
    statement = (
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.store_id == marked.c.store_id,
            webhook_deliveries.c.delivery_key == marked.c.delivery_key,
        )
        .values(outcome=marked.c.outcome, applied_at=func.now())
    )
    return statement if keep_payload else statement.values(payload=None)


# Built once: one prepared statement each, whatever the batch size (an executemany runs once per delivery).
_MARK_APPLIED = _marking(keep_payload=False)
_MARK_FAILED = _marking(keep_payload=True)


async def _mark(conn: AsyncConnection, waiting: list[Row], outcomes: list[str], *, keep_payload: bool = False) -> None:
    marked = zip(waiting, outcomes, strict=True)
    await conn.execute(
        _MARK_FAILED if keep_payload else _MARK_APPLIED,
        {"records": [{"store_id": w.store_id, "delivery_key": w.delivery_key, "outcome": o} for w, o in marked]},
    )


async def apply_deliveries(app: FastAPI) -> None:
    """The applier loop: woken when this instance leaves a group unapplied, and looking every APPLY_IDLE_SECONDS
    for those of other instances or left by a crash. After a failed batch, the next APPLY_BATCH deliveries are applied
    one by one, so that one that cannot be applied is found and set aside."""
    webhooks: Webhooks = app.state.webhooks
    linger = app.state.settings.batch_linger_ms / 1000
    careful = 0
    while True:
        webhooks.arrived.clear()
        try:
            async with webhooks.engine.begin() as conn:
                applied = await (apply_or_set_aside_oldest(conn) if careful else apply_waiting(conn))
        except Exception as exc:
            if unavailable(exc):  # nothing is lost: the deliveries wait for the database
                log.warning("webhooks.apply_waiting_for_database", error=repr(exc))
                await asyncio.sleep(1.0)
            else:
                log.warning("webhooks.batch_failed", error=repr(exc))
                careful = APPLY_BATCH
            continue
        careful = max(careful - applied, 0) if applied else 0
        if not applied or (not careful and applied < APPLY_BATCH):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(webhooks.arrived.wait(), APPLY_IDLE_SECONDS)
            await asyncio.sleep(linger)  # deliveries accepted just after join the next batch


async def prune_webhook_records(engine: AsyncEngine, keep: timedelta) -> int:
    """Applied deliveries and refused payloads older than `keep` go; returns how many. A delivery still waiting to
    be applied stays, whatever its age."""
    d, f = webhook_deliveries, webhook_failures
    deliveries = await prune(engine, d, d.c.received_at < func.now() - keep, d.c.applied_at.is_not(None))
    return deliveries + await prune(engine, f, f.c.received_at < func.now() - keep)


async def prune_webhook_records_hourly(app: FastAPI) -> None:
    keep = timedelta(days=app.state.settings.webhook_retention_days)
    await every_hour("webhooks.records_pruned", partial(prune_webhook_records, app.state.engine, keep))

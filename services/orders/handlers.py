"""Use cases of the orders service: one short function each, one transaction each (the caller's)."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters import repository as repo
from services.orders.adapters.tables import catalog_variants, orders, outbox, product_connections
from services.orders.domain.order import Order, OrderLine, Status, new_order
from shared.errors import Conflict, NotFound
from shared.events import (
    IntegrationEvent,
    OrderPaid,
    OrderReadyForCheckout,
    OrderShipped,
    OrderStatusChanged,
    OrderStatusChangedPayload,
    OrderSynced,
    PayableLine,
    PayableOrderPayload,
    PaymentFailed,
    PaymentStarted,
)
from shared.messaging.outbox import add_events


def payable(order: Order) -> PayableOrderPayload:
    lines = [
        PayableLine(
            catalog_variant_id=line.connection.catalog_variant_id,
            sku=line.connection.sku,
            title=line.connection.title,
            quantity=line.catalog_quantity,
            unit_cost=line.connection.unit_cost,
            unit_weight_grams=line.connection.unit_weight_grams,
        )
        for line in order.lines
        if line.connection is not None
    ]
    return PayableOrderPayload(
        store_id=order.store_id,
        order_name=order.order_name,
        currency=lines[0].unit_cost.currency if lines else order.currency,  # we charge in the catalog's currency
        lines=lines,
        shipping_address=order.shipping_address,
        customer_email=order.customer_email,
        customer_locale=order.customer_locale,
    )


async def publish_changes(conn: AsyncConnection, order: Order, *, content_changed: bool = False) -> None:
    """Turn what the aggregate recorded into integration events, in the same transaction."""
    events: list[IntegrationEvent] = [
        OrderStatusChanged(
            merchant_id=order.merchant_id,
            order_id=order.id,
            payload=OrderStatusChangedPayload(from_status=before, to_status=after, reason=reason),
        )
        for before, after, reason in order.status_changes
    ]
    entered_to_order = any(after == Status.TO_ORDER for _, after, _ in order.status_changes)
    if order.status == Status.TO_ORDER and (entered_to_order or content_changed):
        events.append(OrderReadyForCheckout(merchant_id=order.merchant_id, order_id=order.id, payload=payable(order)))
    await add_events(conn, outbox, *events)


# --- events in ---------------------------------------------------------------------------------------------------


async def on_order_synced(conn: AsyncConnection, event: OrderSynced) -> None:
    store_order = event.payload.order
    actor = f"event:{event.event_type}"
    connections = await repo.connections_for(conn, event.merchant_id, store_order.store_id, store_order.lines)
    order = await repo.get_for_update(conn, event.order_id)
    if order is None:
        order = new_order(
            order_id=event.order_id,
            merchant_id=event.merchant_id,
            store_id=store_order.store_id,
            external_order_id=store_order.external_order_id,
            order_name=store_order.order_name,
            currency=store_order.currency,
            total_price=store_order.total_price,
            shipping_address=store_order.shipping_address,
            lines=store_order.lines,
            store_updated_at=store_order.store_updated_at,
            customer_email=store_order.customer_email,
            customer_locale=store_order.customer_locale,
            actor=actor,
        )
        order.apply_connections(connections, actor)
        await repo.add(conn, order)
        await publish_changes(conn, order)
        return
    lines = [OrderLine(line) for line in store_order.lines]
    if not order.update_from_store(lines, store_order.shipping_address, store_order.store_updated_at, actor):
        return  # an older delivery than what we hold
    if order.status in (Status.QUOTING, Status.TO_ORDER):
        order.apply_connections(connections, actor)
    await repo.save(conn, order)
    await publish_changes(conn, order, content_changed=True)


async def _load(conn: AsyncConnection, order_id: str) -> Order:
    order = await repo.get_for_update(conn, order_id)
    if order is None:
        raise NotFound(f"order {order_id} is unknown")
    return order


async def on_payment_started(conn: AsyncConnection, event: PaymentStarted) -> None:
    order = await _load(conn, event.order_id)
    order.start_payment(f"event:{event.event_type}")
    await repo.save(conn, order)
    await publish_changes(conn, order)


async def on_order_paid(conn: AsyncConnection, event: OrderPaid) -> None:
    order = await _load(conn, event.order_id)
    order.mark_paid(event.payload.amount, f"event:{event.event_type}")
    await repo.save(conn, order)
    await publish_changes(conn, order)


async def on_payment_failed(conn: AsyncConnection, event: PaymentFailed) -> None:
    order = await _load(conn, event.order_id)
    order.payment_failed(event.payload.reason, f"event:{event.event_type}")
    await repo.save(conn, order)
    await publish_changes(conn, order)


async def on_order_shipped(conn: AsyncConnection, event: OrderShipped) -> None:
    order = await _load(conn, event.order_id)
    order.mark_shipped(event.payload.carrier, event.payload.tracking_number, f"event:{event.event_type}")
    await repo.save(conn, order)
    await publish_changes(conn, order)


# --- commands ----------------------------------------------------------------------------------------------------


async def cancel_order(conn: AsyncConnection, merchant_id: str, order_id: str, reason: str, actor: str) -> Order:
    order = await repo.get_for_update(conn, order_id)
    if order is None or order.merchant_id != merchant_id:
        raise NotFound(f"order {order_id} not found")
    order.cancel(reason, actor)
    await repo.save(conn, order)
    await publish_changes(conn, order)
    return order


async def add_catalog_variant(conn: AsyncConnection, values: dict) -> dict:
    if (await conn.execute(select(catalog_variants.c.id).where(catalog_variants.c.sku == values["sku"]))).first():
        raise Conflict(f"a catalog variant with SKU {values['sku']} exists already")
    row = (
        await conn.execute(insert(catalog_variants).values(id=str(uuid.uuid4()), **values).returning(catalog_variants))
    ).one()
    return dict(row._mapping)


async def connect_product(conn: AsyncConnection, merchant_id: str, values: dict, actor: str) -> dict:
    """Connect a store product to a catalog variant, then move every Quoting order it completes to To Order."""
    variant = (
        await conn.execute(select(catalog_variants.c.id).where(catalog_variants.c.id == values["catalog_variant_id"]))
    ).first()
    if variant is None:
        raise NotFound(f"catalog variant {values['catalog_variant_id']} not found")
    pc = product_connections
    existing = (
        await conn.execute(
            select(pc.c.id).where(
                pc.c.merchant_id == merchant_id,
                pc.c.store_id == values["store_id"],
                pc.c.external_product_id == values["external_product_id"],
                pc.c.external_variant_id == values["external_variant_id"],
            )
        )
    ).first()
    if existing is not None:
        raise Conflict(f"this store product is connected already (connection {existing.id})")
    row = (
        await conn.execute(insert(pc).values(id=str(uuid.uuid4()), merchant_id=merchant_id, **values).returning(pc))
    ).one()
    await reevaluate_quoting_orders(conn, merchant_id, values["store_id"], values["external_product_id"], actor)
    return dict(row._mapping)


async def reevaluate_quoting_orders(
    conn: AsyncConnection, merchant_id: str, store_id: str, external_product_id: str, actor: str
) -> None:
    ids = (
        await conn.execute(
            select(orders.c.id)
            .where(
                orders.c.merchant_id == merchant_id,
                orders.c.store_id == store_id,
                orders.c.status == Status.QUOTING.value,
                orders.c.lines.contains([{"store": {"external_product_id": external_product_id}}]),
            )
            .order_by(orders.c.id)
        )
    ).scalars()
    for order_id in ids:
        order = await repo.get_for_update(conn, order_id)
        if order is None or order.status != Status.QUOTING:
            continue
        connections = await repo.connections_for(conn, merchant_id, store_id, [x.store for x in order.lines])
        order.apply_connections(connections, actor)
        await repo.save(conn, order)
        await publish_changes(conn, order)

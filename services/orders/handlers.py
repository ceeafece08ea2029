"""Use cases of the orders service: one short function each, one transaction each (the caller's)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters import repository as repo
from services.orders.adapters.tables import (
    catalog_products,
    catalog_variants,
    merchant_settings,
    orders,
    outbox,
    packaging_rules,
    private_products,
    product_connections,
    quotes,
)
from services.orders.domain import quote as quote_rules
from services.orders.domain.order import (
    EDITABLE,
    AfterSalesCase,
    CaseKind,
    Order,
    OrderLine,
    Shipment,
    Status,
    new_order,
)
from shared.errors import Conflict, NotFound
from shared.events import (
    Address,
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
    RefundApproved,
    RefundApprovedPayload,
    RefundCompleted,
    RefundFailed,
    ReshipmentApproved,
    ReshipmentApprovedPayload,
    ShipmentStatusChanged,
    StoreOrderCancelled,
)
from shared.logging import bind_correlation_id
from shared.messaging.outbox import add_events
from shared.money import Money


def payable(order: Order, line_ids: list[str] | None = None) -> PayableOrderPayload:
    """What checkout and tracking need of the order (all lines, or only `line_ids` for a reshipment)."""
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
        if line.connection is not None and (line_ids is None or line.store.external_line_id in line_ids)
    ]
    packaging = [
        PayableLine(
            catalog_variant_id=p.catalog_variant_id,
            sku=p.sku,
            title=p.name,
            quantity=p.quantity,
            unit_cost=p.unit_cost,
            unit_weight_grams=p.unit_weight_grams,
        )
        for p in order.packaging
    ]
    return PayableOrderPayload(
        store_id=order.store_id,
        store_name=order.store_name,
        order_name=order.order_name,
        currency=lines[0].unit_cost.currency if lines else order.currency,  # we charge in the catalog's currency
        lines=lines,
        packaging=packaging,
        shipping_address=order.shipping_address,
        customer_email=order.customer_email,
        customer_locale=order.customer_locale,
        customer_notified_by_store=order.customer_notified_by_store,
        store_total=order.total_price,
    )


def recorded_events(order: Order, content_changed: bool = False) -> list[IntegrationEvent]:
    """What the order recorded in this unit of work, as integration events: one for its net move (the steps in
    between were never visible outside it, and the timeline keeps them), OrderReadyForCheckout when it entered To
    Order (that move's one event: it carries the order as checkout needs it) or changed there."""
    events: list[IntegrationEvent] = []
    if order.status_changes:
        before, (_, after, reason) = order.status_changes[0][0], order.status_changes[-1]
        if before != after and after != Status.TO_ORDER:
            payload = OrderStatusChangedPayload(from_status=before, to_status=after, reason=reason)
            events.append(OrderStatusChanged(merchant_id=order.merchant_id, order_id=order.id, payload=payload))
    entered_to_order = any(after == Status.TO_ORDER for _, after, _ in order.status_changes)
    if order.status == Status.TO_ORDER and (entered_to_order or content_changed):
        events.append(OrderReadyForCheckout(merchant_id=order.merchant_id, order_id=order.id, payload=payable(order)))
    return events


async def publish_changes(
    conn: AsyncConnection, order: Order, *extra: IntegrationEvent, content_changed: bool = False
) -> None:
    """Save the order and turn what it recorded into integration events, in the same transaction."""
    await repo.save(conn, order)
    await add_events(conn, outbox, *recorded_events(order, content_changed), *extra)


def _actor(event: IntegrationEvent) -> str:
    return f"event:{event.event_type}:{event.event_id}"


async def _reevaluate(conn: AsyncConnection, changed: list[tuple[Order, str]]) -> None:
    """Connections and packaging of orders before payment (each with the actor of its change), with one query of
    each kind for them all. They are taken in turn, as one by one: a product that one order auto-connects is
    connected for the orders after it."""
    batch = [order for order, _ in changed]
    connections = await repo.load_connections(conn, batch)
    if await repo.auto_connect_by_sku(conn, batch, connections):
        connections = await repo.load_connections(conn, batch)
    packaging = await repo.packaging_for(conn, batch)
    for (order, actor), items in zip(changed, packaging, strict=True):
        order.apply_connections(connections.for_order(order), actor)
        order.set_packaging(items, actor)


# --- events in ---------------------------------------------------------------------------------------------------


async def on_orders_synced(conn: AsyncConnection, events: list[OrderSynced]) -> None:
    """Store orders as the store has them, event by event in order. New orders (the common case) wait and are
    created together, with a few statements for them all; an event for an order that exists (an update, or a
    second event for an order of this batch) first creates the new orders before it, then goes through the
    per-order logic: the rows and the events out are those of the events applied one by one."""
    known = await repo.lock_existing(conn, {event.order_id for event in events})
    waiting: list[tuple[Order, OrderSynced]] = []
    for event in events:
        if event.order_id in known:
            await _create(conn, waiting)
            waiting = []
            bind_correlation_id(event.correlation_id)
            await _update_from_store(conn, event)
        else:
            waiting.append((_new_order(event), event))
            known.add(event.order_id)
    await _create(conn, waiting)


def _new_order(event: OrderSynced) -> Order:
    store_order = event.payload.order
    return new_order(
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
        actor=_actor(event),
        store_name=store_order.store_name,
        customer_notified_by_store=store_order.customer_notified_by_store,
    )


async def _create(conn: AsyncConnection, created: list[tuple[Order, OrderSynced]]) -> None:
    """Connect, pack and insert new orders, and queue their events: one statement per table for them all. Each
    order's events carry the correlation id of the event that brought it."""
    if not created:
        return
    await _reevaluate(conn, [(order, _actor(event)) for order, event in created])
    await repo.add(conn, [order for order, _ in created])
    out = []
    for order, event in created:
        bind_correlation_id(event.correlation_id)
        out += recorded_events(order)
    await add_events(conn, outbox, *out)


async def _update_from_store(conn: AsyncConnection, event: OrderSynced) -> None:
    store_order = event.payload.order
    actor = _actor(event)
    order = await _load(conn, event.order_id)
    lines = [OrderLine(line) for line in store_order.lines]
    if not order.update_from_store(lines, store_order.shipping_address, store_order.store_updated_at, actor):
        return  # an older delivery than what we hold
    if order.status in EDITABLE:
        await _reevaluate(conn, [(order, actor)])
    await publish_changes(conn, order, content_changed=True)


async def _load(conn: AsyncConnection, order_id: str) -> Order:
    order = await repo.get_for_update(conn, order_id)
    if order is None:
        raise NotFound(f"order {order_id} is unknown")
    return order


async def on_store_order_cancelled(conn: AsyncConnection, event: StoreOrderCancelled) -> None:
    order = await _load(conn, event.order_id)
    order.store_cancelled(event.payload.reason, _actor(event))
    await publish_changes(conn, order)


async def on_payment_started(conn: AsyncConnection, event: PaymentStarted) -> None:
    order = await _load(conn, event.order_id)
    order.start_payment(_actor(event))
    await publish_changes(conn, order)


async def on_order_paid(conn: AsyncConnection, event: OrderPaid) -> None:
    order = await _load(conn, event.order_id)
    order.mark_paid(event.payload.amount, _actor(event), event.payload.shipping)
    await publish_changes(conn, order)


async def on_payment_failed(conn: AsyncConnection, event: PaymentFailed) -> None:
    order = await _load(conn, event.order_id)
    order.payment_failed(event.payload.reason, _actor(event))
    await publish_changes(conn, order)


async def on_order_shipped(conn: AsyncConnection, event: OrderShipped) -> None:
    p = event.payload
    order = await _load(conn, event.order_id)
    shipment = Shipment(p.shipment_id, p.carrier, p.tracking_number, p.tracking_url, p.shipped_at)
    if p.reshipment_id is not None:
        order.reshipped(p.reshipment_id, shipment, _actor(event))
    else:
        order.mark_shipped(shipment, _actor(event))
    await publish_changes(conn, order)


async def on_shipment_status_changed(conn: AsyncConnection, event: ShipmentStatusChanged) -> None:
    order = await _load(conn, event.order_id)
    p = event.payload
    order.carrier_status(p.status, f"{p.tracking_number} {p.message}".strip(), _actor(event))
    await publish_changes(conn, order)


async def on_refund_completed(conn: AsyncConnection, event: RefundCompleted) -> None:
    order = await _load(conn, event.order_id)
    order.refund_completed(event.payload.refund_id, event.payload.amount, _actor(event))
    await publish_changes(conn, order)


async def on_refund_failed(conn: AsyncConnection, event: RefundFailed) -> None:
    order = await _load(conn, event.order_id)
    order.refund_failed(event.payload.refund_id, event.payload.reason, _actor(event))
    await publish_changes(conn, order)


# --- merchant and ops commands on an order -----------------------------------------------------------------------


async def load_own(conn: AsyncConnection, merchant_id: str | None, order_id: str) -> Order:
    """The order, locked; a merchant's own only (ops: merchant_id None)."""
    order = await repo.get_for_update(conn, order_id)
    if order is None or (merchant_id is not None and order.merchant_id != merchant_id):
        raise NotFound(f"order {order_id} not found")
    return order


async def cancel_order(conn: AsyncConnection, merchant_id: str, order_id: str, reason: str, actor: str) -> Order:
    order = await load_own(conn, merchant_id, order_id)
    order.cancel(reason, actor)
    await publish_changes(conn, order)
    return order


async def change_address(conn: AsyncConnection, merchant_id: str, order_id: str, address: Address, actor: str) -> Order:
    order = await load_own(conn, merchant_id, order_id)
    order.change_address(address, actor)
    await publish_changes(conn, order, content_changed=True)
    return order


async def request_refund(
    conn: AsyncConnection, merchant_id: str, order_id: str, reason: str, line_ids: list[str], amount: Money, actor: str
) -> AfterSalesCase:
    order = await load_own(conn, merchant_id, order_id)
    order.request_refund(str(uuid.uuid4()), reason, line_ids, amount, actor)
    await publish_changes(conn, order)
    return order.cases[-1]


async def request_reshipment(
    conn: AsyncConnection, merchant_id: str, order_id: str, reason: str, line_ids: list[str], actor: str
) -> AfterSalesCase:
    order = await load_own(conn, merchant_id, order_id)
    order.request_reshipment(str(uuid.uuid4()), reason, line_ids, actor)
    await publish_changes(conn, order)
    return order.cases[-1]


async def decide_case(
    conn: AsyncConnection, order_id: str, case_id: str, kind: CaseKind, approve: bool, reason: str, actor: str
) -> AfterSalesCase:
    """Ops approve or reject a refund or a reshipment; an approval tells checkout or tracking to act."""
    order = await load_own(conn, None, order_id)
    case = next((c for c in order.cases if c.id == case_id and c.kind == kind), None)
    if case is None:
        raise NotFound(f"{kind} {case_id} not found on order {order_id}")
    if not approve:
        order.reject(case_id, reason, actor)
        await publish_changes(conn, order)
        return case
    order.approve(case_id, actor)
    if kind == CaseKind.REFUND:
        assert case.amount is not None
        approved: IntegrationEvent = RefundApproved(
            merchant_id=order.merchant_id,
            order_id=order.id,
            payload=RefundApprovedPayload(
                refund_id=case.id, amount=case.amount, reason=case.reason, external_line_ids=case.external_line_ids
            ),
        )
    else:
        approved = ReshipmentApproved(
            merchant_id=order.merchant_id,
            order_id=order.id,
            payload=ReshipmentApprovedPayload(
                reshipment_id=case.id,
                reason=case.reason,
                order=payable(order, case.external_line_ids),
                shipping=order.shipping,
            ),
        )
    await publish_changes(conn, order, approved)
    return case


# --- catalog -----------------------------------------------------------------------------------------------------


async def add_catalog_product(conn: AsyncConnection, values: dict) -> dict:
    row = (
        await conn.execute(insert(catalog_products).values(id=str(uuid.uuid4()), **values).returning(catalog_products))
    ).one()
    return dict(row._mapping)


async def add_catalog_variant(conn: AsyncConnection, values: dict) -> dict:
    if values.get("product_id") and (await _catalog_product(conn, values["product_id"])) is None:
        raise NotFound(f"catalog product {values['product_id']} not found")
    if (await conn.execute(select(catalog_variants.c.id).where(catalog_variants.c.sku == values["sku"]))).first():
        raise Conflict(f"a catalog variant with SKU {values['sku']} exists already")
    row = (
        await conn.execute(insert(catalog_variants).values(id=str(uuid.uuid4()), **values).returning(catalog_variants))
    ).one()
    return dict(row._mapping)


async def update_catalog_variant(conn: AsyncConnection, variant_id: str, values: dict) -> dict:
    """Changes apply to orders connected from now on; orders already priced keep their snapshot."""
    cv = catalog_variants
    if values:
        row = (await conn.execute(update(cv).where(cv.c.id == variant_id).values(**values).returning(cv))).first()
    else:  # nothing to change (an UPDATE without SET is not SQL): the variant as it is
        row = (await conn.execute(select(cv).where(cv.c.id == variant_id))).first()
    if row is None:
        raise NotFound(f"catalog variant {variant_id} not found")
    return dict(row._mapping)


async def _catalog_product(conn: AsyncConnection, product_id: str):
    return (await conn.execute(select(catalog_products.c.id).where(catalog_products.c.id == product_id))).first()


async def _active_variant(conn: AsyncConnection, variant_id: str) -> None:
    cv = catalog_variants
    found = (await conn.execute(select(cv.c.status).where(cv.c.id == variant_id))).first()
    if found is None:
        raise NotFound(f"catalog variant {variant_id} not found")
    if found.status != "active":
        raise Conflict(f"catalog variant {variant_id} is {found.status}")


# --- product connections -----------------------------------------------------------------------------------------


async def connect_product(conn: AsyncConnection, merchant_id: str, values: dict, actor: str) -> dict:
    """Connect a store product to a catalog variant, then move every Quoting order it completes to To Order."""
    await _active_variant(conn, values["catalog_variant_id"])
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
    await reevaluate_orders(conn, merchant_id, values["store_id"], values["external_product_id"], actor)
    return dict(row._mapping)


async def disconnect_product(conn: AsyncConnection, merchant_id: str, connection_id: str, actor: str) -> None:
    """Remove a connection; To Order orders that needed it go back to Quoting, orders paid keep their snapshot."""
    pc = product_connections
    row = (
        await conn.execute(delete(pc).where(pc.c.id == connection_id, pc.c.merchant_id == merchant_id).returning(pc))
    ).first()
    if row is None:
        raise NotFound(f"product connection {connection_id} not found")
    await reevaluate_orders(conn, merchant_id, row.store_id, row.external_product_id, actor)


async def reevaluate_orders(
    conn: AsyncConnection, merchant_id: str, store_id: str, external_product_id: str, actor: str
) -> None:
    """Re-apply connections to the orders before payment that hold this store product."""
    ids = (
        await conn.execute(
            select(orders.c.id)
            .where(
                orders.c.merchant_id == merchant_id,
                orders.c.store_id == store_id,
                orders.c.status.in_([s.value for s in EDITABLE]),
                orders.c.lines.contains([{"store": {"external_product_id": external_product_id}}]),
            )
            .order_by(orders.c.id)
        )
    ).scalars()
    for order_id in ids:
        order = await repo.get_for_update(conn, order_id)
        if order is None or order.status not in EDITABLE:
            continue
        order.apply_connections((await repo.load_connections(conn, [order])).for_order(order), actor)
        await publish_changes(conn, order, content_changed=True)


async def set_merchant_settings(conn: AsyncConnection, merchant_id: str, auto_connect_by_sku: bool) -> None:
    ms = merchant_settings
    await conn.execute(
        pg_insert(ms)
        .values(merchant_id=merchant_id, auto_connect_by_sku=auto_connect_by_sku)
        .on_conflict_do_update(index_elements=[ms.c.merchant_id], set_={"auto_connect_by_sku": auto_connect_by_sku})
    )


# --- quotes ------------------------------------------------------------------------------------------------------


async def request_quote(conn: AsyncConnection, merchant_id: str, values: dict) -> dict:
    pc, q = product_connections, quotes
    key = (values["store_id"], values["external_product_id"], values["external_variant_id"])
    connected = (
        await conn.execute(
            select(pc.c.id).where(
                pc.c.merchant_id == merchant_id,
                pc.c.store_id == key[0],
                pc.c.external_product_id == key[1],
                pc.c.external_variant_id.in_([key[2], ""]),
            )
        )
    ).first()
    if connected is not None:
        raise Conflict(f"this store product is connected already (connection {connected.id})")
    open_quote = (
        await conn.execute(
            select(q.c.id, q.c.status).where(
                q.c.merchant_id == merchant_id,
                q.c.store_id == key[0],
                q.c.external_product_id == key[1],
                q.c.external_variant_id == key[2],
                q.c.status.in_([quote_rules.QuoteStatus.TO_CLAIM, quote_rules.QuoteStatus.PROCESSING]),
            )
        )
    ).first()
    if open_quote is not None:
        raise Conflict(f"quote {open_quote.id} for this product is {open_quote.status}")
    row = (
        await conn.execute(
            insert(q)
            .values(id=str(uuid.uuid4()), merchant_id=merchant_id, status=quote_rules.QuoteStatus.TO_CLAIM, **values)
            .returning(q)
        )
    ).one()
    return dict(row._mapping)


async def _quote_for_update(conn: AsyncConnection, quote_id: str):
    row = (await conn.execute(select(quotes).where(quotes.c.id == quote_id).with_for_update())).first()
    if row is None:
        raise NotFound(f"quote {quote_id} not found")
    return row


async def _set_quote(conn: AsyncConnection, quote_id: str, **values) -> dict:
    q = quotes
    row = (
        await conn.execute(update(q).where(q.c.id == quote_id).values(**values, updated_at=func.now()).returning(q))
    ).one()
    return dict(row._mapping)


async def claim_quote(conn: AsyncConnection, quote_id: str, actor: str) -> dict:
    row = await _quote_for_update(conn, quote_id)
    return await _set_quote(conn, quote_id, status=quote_rules.move(row.status, "claim"), claimed_by=actor)


async def answer_quote(
    conn: AsyncConnection, quote_id: str, catalog_variant_id: str, quantity_ratio: int, actor: str
) -> dict:
    """Ops price the product with a catalog variant: the product is connected and its Quoting orders move on."""
    row = await _quote_for_update(conn, quote_id)
    status = quote_rules.move(row.status, "answer")
    connection = await connect_product(
        conn,
        row.merchant_id,
        {
            "store_id": row.store_id,
            "external_product_id": row.external_product_id,
            "external_variant_id": row.external_variant_id,
            "catalog_variant_id": catalog_variant_id,
            "quantity_ratio": quantity_ratio,
        },
        actor,
    )
    return await _set_quote(
        conn,
        quote_id,
        status=status,
        claimed_by=row.claimed_by or actor,
        catalog_variant_id=catalog_variant_id,
        quantity_ratio=quantity_ratio,
        connection_id=connection["id"],
    )


async def decline_quote(conn: AsyncConnection, quote_id: str, reason: str, actor: str) -> dict:
    row = await _quote_for_update(conn, quote_id)
    status = quote_rules.move(row.status, "decline")
    return await _set_quote(conn, quote_id, status=status, decline_reason=reason, claimed_by=row.claimed_by or actor)


# --- custom packaging --------------------------------------------------------------------------------------------


async def add_private_product(conn: AsyncConnection, merchant_id: str, values: dict) -> dict:
    await _active_variant(conn, values["catalog_variant_id"])
    pp = private_products
    row = (
        await conn.execute(insert(pp).values(id=str(uuid.uuid4()), merchant_id=merchant_id, **values).returning(pp))
    ).one()
    return dict(row._mapping)


async def add_packaging_rule(conn: AsyncConnection, merchant_id: str, values: dict) -> dict:
    pp, pr = private_products, packaging_rules
    owned = (
        await conn.execute(
            select(pp.c.id).where(pp.c.id == values["private_product_id"], pp.c.merchant_id == merchant_id)
        )
    ).first()
    if owned is None:
        raise NotFound(f"private product {values['private_product_id']} not found")
    row = (
        await conn.execute(insert(pr).values(id=str(uuid.uuid4()), merchant_id=merchant_id, **values).returning(pr))
    ).one()
    return dict(row._mapping)


async def delete_packaging_rule(conn: AsyncConnection, merchant_id: str, rule_id: str) -> None:
    pr = packaging_rules
    gone = (
        await conn.execute(delete(pr).where(pr.c.id == rule_id, pr.c.merchant_id == merchant_id).returning(pr.c.id))
    ).first()
    if gone is None:
        raise NotFound(f"packaging rule {rule_id} not found")

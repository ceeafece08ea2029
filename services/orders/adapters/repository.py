"""Loads and saves the order aggregate; rows in, domain objects out."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import and_, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters.tables import catalog_variants, order_timeline, orders, product_connections
from services.orders.domain.order import Connection, Order, OrderLine, Status
from shared.events import Address, StoreOrderLine
from shared.money import Money


class StaleOrder(Exception):
    """Someone else saved the order since it was loaded."""


def _line_to_json(line: OrderLine) -> dict:
    c = line.connection
    return {
        "store": line.store.model_dump(mode="json"),
        "connection": None
        if c is None
        else {
            "catalog_variant_id": c.catalog_variant_id,
            "sku": c.sku,
            "title": c.title,
            "unit_cost": str(c.unit_cost.amount),
            "currency": c.unit_cost.currency,
            "unit_weight_grams": c.unit_weight_grams,
            "quantity_ratio": c.quantity_ratio,
        },
    }


def _line_from_json(data: dict) -> OrderLine:
    c = data["connection"]
    return OrderLine(
        store=StoreOrderLine.model_validate(data["store"]),
        connection=None
        if c is None
        else Connection(
            catalog_variant_id=c["catalog_variant_id"],
            sku=c["sku"],
            title=c["title"],
            unit_cost=Money.of(c["unit_cost"], c["currency"]),
            unit_weight_grams=c["unit_weight_grams"],
            quantity_ratio=c["quantity_ratio"],
        ),
    )


def _row_to_order(row) -> Order:
    return Order(
        id=row.id,
        merchant_id=row.merchant_id,
        store_id=row.store_id,
        external_order_id=row.external_order_id,
        order_name=row.order_name,
        currency=row.currency,
        total_price=Money.of(row.total_price, row.currency),
        shipping_address=Address.model_validate(row.shipping_address),
        lines=[_line_from_json(x) for x in row.lines],
        store_updated_at=row.store_updated_at,
        customer_email=row.customer_email,
        customer_locale=row.customer_locale,
        status=Status(row.status),
        status_reason=row.status_reason,
        paid_amount=None if row.paid_amount is None else Money.of(row.paid_amount, row.currency),
        version=row.version,
        flags=list(row.flags),
    )


def _values(order: Order) -> dict:
    return {
        "merchant_id": order.merchant_id,
        "store_id": order.store_id,
        "external_order_id": order.external_order_id,
        "order_name": order.order_name,
        "status": order.status.value,
        "status_reason": order.status_reason,
        "currency": order.currency,
        "total_price": order.total_price.amount,
        "paid_amount": None if order.paid_amount is None else order.paid_amount.amount,
        "customer_email": order.customer_email,
        "customer_locale": order.customer_locale,
        "shipping_address": order.shipping_address.model_dump(mode="json"),
        "country_code": order.shipping_address.country_code,
        "lines": [_line_to_json(line) for line in order.lines],
        "flags": order.flags,
        "store_updated_at": order.store_updated_at,
    }


async def get_for_update(conn: AsyncConnection, order_id: str) -> Order | None:
    row = (await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())).first()
    return None if row is None else _row_to_order(row)


async def get(conn: AsyncConnection, merchant_id: str, order_id: str) -> Order | None:
    row = (
        await conn.execute(select(orders).where(orders.c.id == order_id, orders.c.merchant_id == merchant_id))
    ).first()
    return None if row is None else _row_to_order(row)


async def add(conn: AsyncConnection, order: Order) -> None:
    await conn.execute(insert(orders).values(id=order.id, **_values(order)))
    await _write_timeline(conn, order)


async def save(conn: AsyncConnection, order: Order) -> None:
    result = await conn.execute(
        update(orders)
        .where(orders.c.id == order.id, orders.c.version == order.version)
        .values(**_values(order), version=order.version + 1, updated_at=func.now())
    )
    if result.rowcount != 1:
        raise StaleOrder(order.id)
    order.version += 1
    await _write_timeline(conn, order)


async def _write_timeline(conn: AsyncConnection, order: Order) -> None:
    if order.changes:
        await conn.execute(
            insert(order_timeline),
            [{"order_id": order.id, "kind": c.kind, "detail": c.detail, "actor": c.actor} for c in order.changes],
        )


async def connections_for(
    conn: AsyncConnection, merchant_id: str, store_id: str, lines: list[StoreOrderLine]
) -> dict[tuple[str | None, str | None], Connection]:
    """The catalog connections of these store lines, keyed by (external product id, external variant id)."""
    keys = {(line.external_product_id or "", line.external_variant_id or "") for line in lines}
    if not keys:
        return {}
    pc, cv = product_connections, catalog_variants
    rows = await conn.execute(
        select(pc.c.external_product_id, pc.c.external_variant_id, pc.c.quantity_ratio, cv)
        .join(cv, cv.c.id == pc.c.catalog_variant_id)
        .where(
            pc.c.merchant_id == merchant_id,
            pc.c.store_id == store_id,
            cv.c.status == "active",
            or_(
                tuple_(pc.c.external_product_id, pc.c.external_variant_id).in_(list(keys)),
                # a connection without a variant covers every variant of the product
                and_(pc.c.external_variant_id == "", pc.c.external_product_id.in_([k[0] for k in keys])),
            ),
        )
    )
    by_key: dict[tuple[str, str], Connection] = {}
    for r in rows:
        by_key[(r.external_product_id, r.external_variant_id)] = Connection(
            catalog_variant_id=r.id,
            sku=r.sku,
            title=r.title,
            unit_cost=Money.of(Decimal(r.unit_cost), r.currency),
            unit_weight_grams=r.weight_grams,
            quantity_ratio=r.quantity_ratio,
        )
    result: dict[tuple[str | None, str | None], Connection] = {}
    for line in lines:
        product, variant = line.external_product_id or "", line.external_variant_id or ""
        found = by_key.get((product, variant)) or by_key.get((product, ""))
        if found:
            result[(line.external_product_id, line.external_variant_id)] = found
    return result

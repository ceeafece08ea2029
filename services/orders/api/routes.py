from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select, tuple_

from services.orders import handlers
from services.orders.adapters import repository as repo
from services.orders.adapters.tables import catalog_variants, order_timeline, orders, product_connections
from services.orders.api.schemas import (
    CancelRequest,
    CatalogVariantCreate,
    CatalogVariantPublic,
    ConnectionsPage,
    OrderDetail,
    OrderLinePublic,
    OrdersPage,
    OrderSummary,
    ProductConnectionCreate,
    ProductConnectionPublic,
    TimelineEntryPublic,
)
from services.orders.domain.order import Order, Status
from shared.auth import AnyUser, Merchant, Ops
from shared.errors import NotFound
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.money import Money
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


def _summary(row) -> OrderSummary:
    return OrderSummary(
        id=row.id,
        store_id=row.store_id,
        external_order_id=row.external_order_id,
        order_name=row.order_name,
        status=row.status,
        status_reason=row.status_reason,
        total_price=Money.of(row.total_price, row.currency),
        country_code=row.country_code,
        created_at=row.created_at,
    )


@router.get("/orders", tags=["orders"], summary="List orders of one tab, newest first")
async def list_orders(
    user: Merchant,
    engine: Engine,
    status: Annotated[Status, Query(description="the tab")] = Status.TO_ORDER,
    store_id: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OrdersPage:
    query = select(orders).where(orders.c.merchant_id == user.merchant_id, orders.c.status == status.value)
    if store_id:
        query = query.where(orders.c.store_id == store_id)
    if cursor:
        created_at, last_id = decode_cursor(cursor)
        query = query.where(
            tuple_(orders.c.created_at, orders.c.id) < tuple_(datetime.fromisoformat(created_at), last_id)
        )
    async with engine.connect() as conn:
        rows = (
            await conn.execute(query.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit + 1))
        ).all()
    items = [_summary(r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(last.created_at.isoformat(), last.id) if last else None
    return OrdersPage(items=items, next_cursor=next_cursor)


@router.get("/orders/counts", tags=["orders"], summary="How many orders every tab holds")
async def order_counts(user: Merchant, engine: Engine) -> dict[Status, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(orders.c.status, func.count())
            .where(orders.c.merchant_id == user.merchant_id)
            .group_by(orders.c.status)
        )
        found = {r[0]: r[1] for r in rows}
    return {s: found.get(s.value, 0) for s in Status}


@router.get("/orders/{order_id}", tags=["orders"], summary="One order with its lines, costs and timeline")
async def get_order(order_id: str, user: Merchant, engine: Engine) -> OrderDetail:
    async with engine.connect() as conn:
        order = await repo.get(conn, user.merchant_id, order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found")
        created_at = (await conn.execute(select(orders.c.created_at).where(orders.c.id == order_id))).scalar_one()
        timeline = (
            await conn.execute(
                select(order_timeline).where(order_timeline.c.order_id == order_id).order_by(order_timeline.c.id)
            )
        ).all()
    return _detail(order, created_at, timeline)


def _detail(order: Order, created_at: datetime, timeline) -> OrderDetail:
    lines = []
    for line in order.lines:
        c = line.connection
        lines.append(
            OrderLinePublic(
                **line.store.model_dump(
                    include={
                        "external_line_id",
                        "external_product_id",
                        "external_variant_id",
                        "sku",
                        "title",
                        "quantity",
                    }
                ),
                unit_price=line.store.unit_price,
                connected=c is not None,
                catalog_variant_id=c.catalog_variant_id if c else None,
                catalog_sku=c.sku if c else None,
                unit_cost=c.unit_cost if c else None,
                quantity_ratio=c.quantity_ratio if c else None,
            )
        )
    connected = [line for line in order.lines if line.connection is not None]
    product_cost = (
        Money.of(
            sum((line.connection.unit_cost.amount * line.catalog_quantity for line in connected), Decimal(0)),
            connected[0].connection.unit_cost.currency,
        )
        if connected
        else None
    )
    return OrderDetail(
        id=order.id,
        store_id=order.store_id,
        external_order_id=order.external_order_id,
        order_name=order.order_name,
        status=order.status.value,
        status_reason=order.status_reason,
        total_price=order.total_price,
        country_code=order.shipping_address.country_code,
        created_at=created_at,
        customer_email=order.customer_email,
        customer_locale=order.customer_locale,
        shipping_address=order.shipping_address,
        lines=lines,
        product_cost=product_cost,
        paid_amount=order.paid_amount,
        flags=order.flags,
        timeline=[TimelineEntryPublic(kind=t.kind, detail=t.detail, actor=t.actor, at=t.at) for t in timeline],
    )


@router.post("/orders/{order_id}/cancel", tags=["orders"], summary="Cancel an order from Quoting or To Order")
async def cancel_order(order_id: str, body: CancelRequest, user: Merchant, engine: Engine) -> OrderSummary:
    async with engine.begin() as conn:
        await handlers.cancel_order(conn, user.merchant_id, order_id, body.reason, f"user:{user.sub}")
        row = (await conn.execute(select(orders).where(orders.c.id == order_id))).one()
    return _summary(row)


@router.post("/catalog/variants", status_code=201, tags=["catalog"], summary="Add a sourced product variant")
async def add_catalog_variant(body: CatalogVariantCreate, _: Ops, engine: Engine) -> CatalogVariantPublic:
    async with engine.begin() as conn:
        row = await handlers.add_catalog_variant(conn, body.model_dump())
    return CatalogVariantPublic.model_validate(row)


@router.get("/catalog/variants", tags=["catalog"], summary="Search the catalog")
async def list_catalog_variants(
    _: AnyUser, engine: Engine, sku: str | None = None, limit: Limit = 50
) -> list[CatalogVariantPublic]:
    query = select(catalog_variants).order_by(catalog_variants.c.sku).limit(limit)
    if sku:
        query = query.where(catalog_variants.c.sku == sku)
    async with engine.connect() as conn:
        return [CatalogVariantPublic.model_validate(dict(r._mapping)) for r in await conn.execute(query)]


@router.post(
    "/product-connections",
    status_code=201,
    tags=["product connections"],
    summary="Connect a store product to a catalog variant",
)
async def connect_product(body: ProductConnectionCreate, user: Merchant, engine: Engine) -> ProductConnectionPublic:
    async with engine.begin() as conn:
        row = await handlers.connect_product(conn, user.merchant_id, body.model_dump(), f"user:{user.sub}")
    return ProductConnectionPublic.model_validate(row)


@router.get("/product-connections", tags=["product connections"], summary="The merchant's connections")
async def list_connections(
    user: Merchant, engine: Engine, store_id: str | None = None, limit: Limit = 50, cursor: Cursor = None
) -> ConnectionsPage:
    pc = product_connections
    query = select(pc).where(pc.c.merchant_id == user.merchant_id).order_by(pc.c.id).limit(limit + 1)
    if store_id:
        query = query.where(pc.c.store_id == store_id)
    if cursor:
        query = query.where(pc.c.id > decode_cursor(cursor)[0])
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    items = [ProductConnectionPublic.model_validate(dict(r._mapping)) for r in rows[:limit]]
    return ConnectionsPage(items=items, next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)

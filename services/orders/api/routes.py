"""The Manage Orders page: tabs with counts, order detail, the merchant's actions and ops' after-sales decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import Select, func, or_, select

from services.orders import handlers
from services.orders.adapters import repository as repo
from services.orders.adapters.tables import after_sales_cases, idempotency_keys, order_timeline, orders
from services.orders.api.listing import domain_errors, page_by_id
from services.orders.api.schemas import (
    AddressUpdate,
    AfterSalesCasePublic,
    CancelRequest,
    CasesPage,
    Costs,
    OrderDetail,
    OrderLinePublic,
    OrdersPage,
    OrderSummary,
    PackagingPublic,
    RefundCreate,
    Rejection,
    ReshipmentCreate,
    ShipmentPublic,
    TimelineEntryPublic,
)
from services.orders.domain.order import AfterSalesCase, CaseKind, Shipment, Status
from shared.auth import Merchant, Ops
from shared.db import snapshot
from shared.errors import NotFound
from shared.events import Address
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.idempotency import Idempotent
from shared.money import Money
from shared.pagination import keyset_page

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class OrderFilters:
    """The filters the tabs share, so that the counts and the lists agree."""

    def __init__(
        self,
        store_id: str | None = None,
        created_from: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
        created_to: Annotated[datetime | None, Query(description="exclusive, ISO 8601")] = None,
        country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="shipping country")] = None,
        q: Annotated[
            str | None, Query(min_length=1, max_length=200, description="order name, customer email or name")
        ] = None,
    ) -> None:
        self.store_id, self.created_from, self.created_to, self.country, self.q = (
            store_id,
            created_from,
            created_to,
            country,
            q,
        )

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.store_id, self.created_from, self.created_to, self.country, self.q))

    def apply(self, query: Select) -> Select:
        o = orders.c
        if self.store_id:
            query = query.where(o.store_id == self.store_id)
        if self.created_from:
            query = query.where(o.created_at >= self.created_from)
        if self.created_to:
            query = query.where(o.created_at < self.created_to)
        if self.country:
            query = query.where(o.country_code == self.country)
        if self.q:
            pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(
                or_(o.order_name.ilike(pattern), o.customer_email.ilike(pattern), o.customer_name.ilike(pattern))
            )
        return query


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
        customer_name=row.customer_name,
        customer_email=row.customer_email,
        flags=row.flags,
        created_at=row.created_at,
    )


_SUMMARY_COLUMNS = [
    orders.c[name]
    for name in (
        "id",
        "store_id",
        "external_order_id",
        "order_name",
        "status",
        "status_reason",
        "total_price",
        "currency",
        "country_code",
        "customer_name",
        "customer_email",
        "flags",
        "created_at",
    )
]


@router.get("/orders", tags=["orders"], summary="List the orders of one tab")
async def list_orders(
    user: Merchant,
    engine: Engine,
    filters: Annotated[OrderFilters, Depends()],
    status: Annotated[Status, Query(description="the tab")] = Status.TO_ORDER,
    sort: Literal["newest", "oldest"] = "newest",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OrdersPage:
    o = orders.c
    query = filters.apply(select(*_SUMMARY_COLUMNS).where(o.merchant_id == user.merchant_id, o.status == status.value))
    rows, next_cursor = await keyset_page(engine, query, o.created_at, o.id, limit, cursor, ascending=sort == "oldest")
    return OrdersPage(items=[_summary(r) for r in rows], next_cursor=next_cursor)


@router.get("/orders/counts", tags=["orders"], summary="How many orders every tab holds (with the list's filters)")
async def order_counts(
    user: Merchant, engine: Engine, filters: Annotated[OrderFilters, Depends()]
) -> dict[Status, int]:
    async with engine.connect() as conn:
        if not filters.any:  # the counters kept with every status change: constant time
            return await repo.counts(conn, user.merchant_id)
        query = filters.apply(
            select(orders.c.status, func.count()).where(orders.c.merchant_id == user.merchant_id)
        ).group_by(orders.c.status)
        found = {r[0]: r[1] for r in await conn.execute(query)}
    return {s: found.get(s.value, 0) for s in Status}


@router.get("/orders/{order_id}", tags=["orders"], summary="One order: lines, connections, costs, packaging, timeline")
async def get_order(order_id: str, user: Merchant, engine: Engine) -> OrderDetail:
    async with snapshot(engine) as conn:
        return await _detail(conn, user.merchant_id, order_id)


async def _detail(conn, merchant_id: str, order_id: str) -> OrderDetail:
    order = await repo.get(conn, merchant_id, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    row = (await conn.execute(select(*_SUMMARY_COLUMNS).where(orders.c.id == order_id))).one()
    timeline = await conn.execute(
        select(order_timeline).where(order_timeline.c.order_id == order_id).order_by(order_timeline.c.id)
    )
    connected = len(order.lines) - len(order.unconnected_lines())
    return OrderDetail(
        **_summary(row).model_dump(),
        customer_locale=order.customer_locale,
        store_name=order.store_name,
        shipping_address=order.shipping_address,
        connection_state="all" if connected == len(order.lines) else "partial" if connected else "none",
        lines=[_line(line) for line in order.lines],
        costs=Costs(products=order.product_cost(), packaging=order.packaging_cost()),
        packaging=[PackagingPublic(**p.__dict__) for p in order.packaging],
        paid_amount=order.paid_amount,
        refunded_amount=order.refunded(),
        shipping=order.shipping,
        shipment=_shipment(order.shipment),
        resume_status=order.resume_status,
        after_sales=[_case(order.id, c) for c in order.cases],
        timeline=[TimelineEntryPublic(kind=t.kind, detail=t.detail, actor=t.actor, at=t.at) for t in timeline],
    )


def _line(line) -> OrderLinePublic:
    c = line.connection
    return OrderLinePublic(
        **line.store.model_dump(
            include={"external_line_id", "external_product_id", "external_variant_id", "sku", "title", "quantity"}
        ),
        unit_price=line.store.unit_price,
        connected=c is not None,
        catalog_variant_id=c.catalog_variant_id if c else None,
        catalog_sku=c.sku if c else None,
        unit_cost=c.unit_cost if c else None,
        quantity_ratio=c.quantity_ratio if c else None,
    )


def _shipment(s: Shipment | None) -> ShipmentPublic | None:
    return None if s is None else ShipmentPublic(**s.__dict__)


def _case(order_id: str, c: AfterSalesCase) -> AfterSalesCasePublic:
    return AfterSalesCasePublic(
        id=c.id,
        order_id=order_id,
        kind=c.kind.value,
        state=c.state.value,
        reason=c.reason,
        external_line_ids=c.external_line_ids,
        amount=c.amount,
        requested_by=c.requested_by,
        rejection_reason=c.rejection_reason,
        failure_reason=c.failure_reason,
        shipment=_shipment(c.shipment),
    )


# --- the merchant's actions ----------------------------------------------------------------------------------


@router.post("/orders/{order_id}/cancel", tags=["orders"], summary="Cancel an order from Quoting or To Order")
async def cancel_order(order_id: str, body: CancelRequest, user: Merchant, engine: Engine) -> OrderDetail:
    async with engine.begin() as conn:
        await handlers.cancel_order(conn, user.merchant_id, order_id, body.reason, f"user:{user.sub}")
        return await _detail(conn, user.merchant_id, order_id)


@router.put("/orders/{order_id}/address", tags=["orders"], summary="Edit the shipping address before payment")
async def change_address(order_id: str, body: AddressUpdate, user: Merchant, engine: Engine) -> OrderDetail:
    async with engine.begin() as conn:
        address = Address.model_validate(body.model_dump())
        await handlers.change_address(conn, user.merchant_id, order_id, address, f"user:{user.sub}")
        return await _detail(conn, user.merchant_id, order_id)


@router.post(
    "/orders/{order_id}/refunds",
    status_code=201,
    response_model=AfterSalesCasePublic,
    tags=["after-sales"],
    summary="Ask for a refund (reason, lines, amount); the order shows in Refunds while it is in progress",
)
async def request_refund(
    order_id: str, body: RefundCreate, user: Merchant, engine: Engine, once: Idempotent
) -> Response:
    async def action() -> AfterSalesCasePublic:
        case = await handlers.request_refund(
            conn, user.merchant_id, order_id, body.reason, body.external_line_ids, body.amount, f"user:{user.sub}"
        )
        return _case(order_id, case)

    with domain_errors():
        async with engine.begin() as conn:
            return await once.run(
                conn, idempotency_keys, f"{user.merchant_id}:refund:{order_id}", action, status_code=201
            )


@router.post(
    "/orders/{order_id}/reshipments",
    status_code=201,
    response_model=AfterSalesCasePublic,
    tags=["after-sales"],
    summary="Ask to send lines again (reason, lines); the order shows in Resent while it is in progress",
)
async def request_reshipment(
    order_id: str, body: ReshipmentCreate, user: Merchant, engine: Engine, once: Idempotent
) -> Response:
    async def action() -> AfterSalesCasePublic:
        case = await handlers.request_reshipment(
            conn, user.merchant_id, order_id, body.reason, body.external_line_ids, f"user:{user.sub}"
        )
        return _case(order_id, case)

    with domain_errors():
        async with engine.begin() as conn:
            return await once.run(
                conn, idempotency_keys, f"{user.merchant_id}:reshipment:{order_id}", action, status_code=201
            )


# --- ops: after-sales decisions ------------------------------------------------------------------------------


@router.get("/after-sales", tags=["after-sales"], summary="Refunds and reshipments to decide or follow (ops)")
async def list_cases(
    _: Ops,
    engine: Engine,
    kind: Literal["refund", "reshipment"] | None = None,
    state: Literal["requested", "approved", "rejected", "refunded", "reshipped"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CasesPage:
    c = after_sales_cases.c
    query = select(after_sales_cases)
    if kind:
        query = query.where(c.kind == kind)
    if state:
        query = query.where(c.state == state)
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(conn, query, c.id, limit, cursor, _case_row)
    return CasesPage(items=items, next_cursor=next_cursor)


def _case_row(row) -> AfterSalesCasePublic:
    amount = None if row.amount is None else Money.of(row.amount, row.currency)
    return AfterSalesCasePublic.model_validate({**row._mapping, "amount": amount})


async def _decide(order_id: str, case_id: str, kind: CaseKind, approve: bool, reason: str, user, engine):
    with domain_errors():
        async with engine.begin() as conn:
            case = await handlers.decide_case(conn, order_id, case_id, kind, approve, reason, f"user:{user.sub}")
    return _case(order_id, case)


@router.post("/orders/{order_id}/refunds/{refund_id}/approve", tags=["after-sales"], summary="Approve a refund (ops)")
async def approve_refund(order_id: str, refund_id: str, user: Ops, engine: Engine) -> AfterSalesCasePublic:
    return await _decide(order_id, refund_id, CaseKind.REFUND, True, "", user, engine)


@router.post("/orders/{order_id}/refunds/{refund_id}/reject", tags=["after-sales"], summary="Reject a refund (ops)")
async def reject_refund(
    order_id: str, refund_id: str, body: Rejection, user: Ops, engine: Engine
) -> AfterSalesCasePublic:
    return await _decide(order_id, refund_id, CaseKind.REFUND, False, body.reason, user, engine)


@router.post(
    "/orders/{order_id}/reshipments/{reshipment_id}/approve", tags=["after-sales"], summary="Approve a reshipment"
)
async def approve_reshipment(order_id: str, reshipment_id: str, user: Ops, engine: Engine) -> AfterSalesCasePublic:
    return await _decide(order_id, reshipment_id, CaseKind.RESHIPMENT, True, "", user, engine)


@router.post(
    "/orders/{order_id}/reshipments/{reshipment_id}/reject", tags=["after-sales"], summary="Reject a reshipment"
)
async def reject_reshipment(
    order_id: str, reshipment_id: str, body: Rejection, user: Ops, engine: Engine
) -> AfterSalesCasePublic:
    return await _decide(order_id, reshipment_id, CaseKind.RESHIPMENT, False, body.reason, user, engine)

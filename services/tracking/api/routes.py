from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from services.tracking import handlers
from services.tracking.adapters.tables import (
    carrier_events,
    checkpoints,
    emails,
    fulfillment_history,
    fulfillments,
    idempotency_keys,
    shipments,
)
from services.tracking.api.schemas import (
    BulkItem,
    BulkRequest,
    BulkResponse,
    BulkResult,
    CheckpointPublic,
    EmailFailure,
    EmailFailuresPage,
    FulfillmentDetail,
    FulfillmentPublic,
    FulfillmentsPage,
    HistoryEntryPublic,
    Label,
    QualityCheck,
    ShipmentDetail,
    ShipmentPublic,
    ShipmentsPage,
    StepAction,
    UnmatchedEvent,
    UnmatchedEventsPage,
)
from services.tracking.domain.fulfillment import Fulfillment, Step
from shared.auth import AnyUser, Ops, Principal
from shared.db import snapshot
from shared.errors import IllegalTransition, NotFound, ProblemError, Unprocessable
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.idempotency import Idempotent, IdempotentCall
from shared.pagination import keyset_page

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


def _lines(items: list[dict]) -> list[dict]:
    return [{"sku": i.get("sku", ""), "title": i.get("title", ""), "quantity": i["quantity"]} for i in items]


def _public(row) -> FulfillmentPublic:
    order = row.order
    return FulfillmentPublic(
        **{k: v for k, v in row._mapping.items() if k in FulfillmentPublic.model_fields},
        order_name=order["order_name"],
        store_name=order.get("store_name", ""),
        lines=_lines(order["lines"]),
        packaging=_lines(order.get("packaging", [])),
        shipping_address=order["shipping_address"],
    )


# --- the warehouse -------------------------------------------------------------------------------------------


@router.get("/fulfillments", tags=["fulfillment"], summary="The warehouse work queue for one step, oldest paid first")
async def list_fulfillments(
    _: Ops, engine: Engine, step: Step = Step.PURCHASING, limit: Limit = 50, cursor: Cursor = None
) -> FulfillmentsPage:
    f = fulfillments
    rows, next_cursor = await keyset_page(
        engine, select(f).where(f.c.step == step.value), f.c.paid_at, f.c.id, limit, cursor
    )
    return FulfillmentsPage(items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/fulfillments/overdue",
    tags=["fulfillment"],
    summary="Paid longer ago than the promised handling time and not shipped, oldest first",
)
async def overdue_fulfillments(
    _: Ops, request: Request, engine: Engine, limit: Limit = 50, cursor: Cursor = None
) -> FulfillmentsPage:
    f = fulfillments
    hours = request.app.state.settings.handling_time_hours
    query = select(f).where(f.c.step != Step.SHIPPED.value, f.c.paid_at < func.now() - timedelta(hours=hours))
    rows, next_cursor = await keyset_page(engine, query, f.c.paid_at, f.c.id, limit, cursor)
    return FulfillmentsPage(items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/fulfillments/{fulfillment_id}", tags=["fulfillment"], summary="One fulfillment with its step history")
async def get_fulfillment(fulfillment_id: str, user: AnyUser, engine: Engine) -> FulfillmentDetail:
    query = select(fulfillments).where(fulfillments.c.id == fulfillment_id)
    if user.role != "ops":
        query = query.where(fulfillments.c.merchant_id == user.merchant_id)
    async with snapshot(engine) as conn:
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"fulfillment {fulfillment_id} not found")
        history = (
            await conn.execute(
                select(fulfillment_history)
                .where(fulfillment_history.c.fulfillment_id == fulfillment_id)
                .order_by(fulfillment_history.c.id)
            )
        ).all()
    return FulfillmentDetail(
        **_public(row).model_dump(), history=[HistoryEntryPublic.model_validate(dict(h._mapping)) for h in history]
    )


def _operation(action: StepAction, item: BulkItem, actor: str) -> Callable[[Fulfillment], None]:
    """The domain method for an action; missing fields for it are a 422."""
    match action:
        case StepAction.PURCHASE:
            return lambda job: job.complete_purchase(actor)
        case StepAction.QUALITY_CHECK:
            if item.passed is None:
                raise Unprocessable("a quality check needs passed", errors=[{"field": "passed"}])
            if item.passed:
                return lambda job: job.pass_quality_check(actor)
            return lambda job: job.fail_quality_check(item.notes or "no notes", actor)
        case StepAction.PACK:
            return lambda job: job.complete_packing(actor)
        case StepAction.LABEL:
            if not (item.carrier and item.tracking_number):
                raise Unprocessable(
                    "a label needs carrier and tracking_number",
                    errors=[{"field": "carrier"}, {"field": "tracking_number"}],
                )
            carrier, number = item.carrier, item.tracking_number
            return lambda job: job.assign_label(carrier, number, actor)
        case StepAction.SHIP:
            return lambda job: job.ship(actor)


async def _act(engine, user: Principal, fulfillment_id: str, action: StepAction, item: BulkItem, once: IdempotentCall):
    """One step in one transaction; an Idempotency-Key makes a retried request answer as the first one did."""
    operation = _operation(action, item, f"user:{user.sub}")
    async with engine.begin() as conn:

        async def run() -> FulfillmentPublic:
            await handlers.advance(conn, fulfillment_id, operation)
            return _public((await conn.execute(select(fulfillments).where(fulfillments.c.id == fulfillment_id))).one())

        return await once.run(conn, idempotency_keys, f"{user.sub}:fulfillment:{fulfillment_id}:{action.value}", run)


_STEP = {"tags": ["fulfillment"], "response_model": FulfillmentPublic}


# Declared before the single-job actions, whose path would otherwise take "bulk" for a fulfillment id.
@router.post(
    "/fulfillments/bulk/{action}",
    tags=["fulfillment"],
    summary="One action on many jobs; each in its own transaction, each result reported",
)
async def bulk(action: StepAction, body: BulkRequest, user: Ops, engine: Engine) -> BulkResponse:
    results = []
    for item in body.items:
        step = None
        try:
            operation = _operation(action, item, f"user:{user.sub}")
            async with engine.begin() as conn:
                step = (await handlers.advance(conn, item.fulfillment_id, operation)).step.value
            status, detail = 200, None
        except IllegalTransition as exc:
            status, detail, step = 409, str(exc), exc.current
        except ProblemError as exc:
            status, detail = exc.status, exc.detail
        results.append(BulkResult(fulfillment_id=item.fulfillment_id, status=status, step=step, detail=detail))
    return BulkResponse(items=results)


@router.post("/fulfillments/{fulfillment_id}/purchase", summary="Bought from the factory", **_STEP)
async def purchase(fulfillment_id: str, user: Ops, engine: Engine, once: Idempotent):
    item = BulkItem(fulfillment_id=fulfillment_id)
    return await _act(engine, user, fulfillment_id, StepAction.PURCHASE, item, once)


@router.post(
    "/fulfillments/{fulfillment_id}/quality-check",
    summary="Pass, or fail with notes (the goods are bought again)",
    **_STEP,
)
async def quality_check(fulfillment_id: str, body: QualityCheck, user: Ops, engine: Engine, once: Idempotent):
    item = BulkItem(fulfillment_id=fulfillment_id, passed=body.passed, notes=body.notes)
    return await _act(engine, user, fulfillment_id, StepAction.QUALITY_CHECK, item, once)


@router.post("/fulfillments/{fulfillment_id}/pack", summary="Packed with the merchant's packaging", **_STEP)
async def pack(fulfillment_id: str, user: Ops, engine: Engine, once: Idempotent):
    item = BulkItem(fulfillment_id=fulfillment_id)
    return await _act(engine, user, fulfillment_id, StepAction.PACK, item, once)


@router.post("/fulfillments/{fulfillment_id}/label", summary="Carrier and tracking number", **_STEP)
async def label(fulfillment_id: str, body: Label, user: Ops, engine: Engine, once: Idempotent):
    item = BulkItem(fulfillment_id=fulfillment_id, carrier=body.carrier, tracking_number=body.tracking_number)
    return await _act(engine, user, fulfillment_id, StepAction.LABEL, item, once)


@router.post(
    "/fulfillments/{fulfillment_id}/ship",
    summary="Handed to the carrier: the shipment, OrderShipped and the customer's email",
    **_STEP,
)
async def ship(fulfillment_id: str, user: Ops, engine: Engine, once: Idempotent):
    item = BulkItem(fulfillment_id=fulfillment_id)
    return await _act(engine, user, fulfillment_id, StepAction.SHIP, item, once)


# --- shipments and carrier tracking ----------------------------------------------------------------------------


@router.get("/shipments/{shipment_id}", tags=["shipments"], summary="One shipment with its carrier timeline")
async def get_shipment(shipment_id: str, user: AnyUser, engine: Engine) -> ShipmentDetail:
    query = select(shipments).where(shipments.c.id == shipment_id)
    if user.role != "ops":
        query = query.where(shipments.c.merchant_id == user.merchant_id)
    async with snapshot(engine) as conn:
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"shipment {shipment_id} not found")
        scans = (
            await conn.execute(
                select(checkpoints)
                .where(checkpoints.c.shipment_id == shipment_id)
                .order_by(checkpoints.c.checkpoint_at, checkpoints.c.id)
            )
        ).all()
    return ShipmentDetail(
        **dict(row._mapping),
        timeline=[CheckpointPublic(at=s.checkpoint_at, **s._mapping) for s in scans],
    )


@router.get(
    "/alerts/no-scan",
    tags=["shipments"],
    summary="Shipped more than the configured days ago and never scanned by the carrier, oldest first",
)
async def no_scan_alerts(
    user: AnyUser, request: Request, engine: Engine, limit: Limit = 50, cursor: Cursor = None
) -> ShipmentsPage:
    s = shipments
    days = request.app.state.settings.no_scan_days
    query = select(s).where(s.c.status_at.is_(None), s.c.shipped_at < func.now() - timedelta(days=days))
    if user.role != "ops":
        query = query.where(s.c.merchant_id == user.merchant_id)
    rows, next_cursor = await keyset_page(engine, query, s.c.shipped_at, s.c.id, limit, cursor)
    return ShipmentsPage(items=[ShipmentPublic.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor)


@router.get(
    "/tracking-events/unmatched",
    tags=["shipments"],
    summary="Carrier events for tracking numbers no shipment has, newest first",
)
async def unmatched_events(_: Ops, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> UnmatchedEventsPage:
    e = carrier_events
    query = select(e).where(e.c.shipment_id.is_(None))
    rows, next_cursor = await keyset_page(engine, query, e.c.received_at, e.c.event_id, limit, cursor, ascending=False)
    return UnmatchedEventsPage(
        items=[UnmatchedEvent.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor
    )


# --- customer emails -------------------------------------------------------------------------------------------


@router.get(
    "/email-failures",
    tags=["emails"],
    summary="Customer emails that failed or are waiting to be retried, newest first (a merchant sees their own)",
)
async def email_failures(user: AnyUser, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> EmailFailuresPage:
    e = emails
    query = select(e).where(
        (e.c.status == "failed") | ((e.c.status == "pending") & (e.c.attempts > 0)),
    )
    if user.role != "ops":
        query = query.where(e.c.merchant_id == user.merchant_id)
    rows, next_cursor = await keyset_page(engine, query, e.c.created_at, e.c.id, limit, cursor, ascending=False)
    return EmailFailuresPage(
        items=[EmailFailure.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor
    )

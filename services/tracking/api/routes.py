from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from sqlalchemy import select, tuple_

from services.tracking import handlers
from services.tracking.adapters.tables import fulfillments, shipments
from services.tracking.api.schemas import FulfillmentPublic, FulfillmentsPage, Label, QualityCheck, ShipmentPublic
from services.tracking.domain.fulfillment import Fulfillment, Step
from shared.auth import AnyUser, Ops
from shared.errors import NotFound
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


def _public(row) -> FulfillmentPublic:
    return FulfillmentPublic(
        **{k: v for k, v in row._mapping.items() if k in FulfillmentPublic.model_fields},
        order_name=row.order["order_name"],
    )


@router.get("/fulfillments", tags=["fulfillment"], summary="The warehouse work queue for one step, oldest paid first")
async def list_fulfillments(
    _: Ops, engine: Engine, step: Step = Step.PURCHASING, limit: Limit = 50, cursor: Cursor = None
) -> FulfillmentsPage:
    f = fulfillments
    query = select(f).where(f.c.step == step.value).order_by(f.c.paid_at, f.c.id).limit(limit + 1)
    if cursor:
        paid_at, last_id = decode_cursor(cursor)
        query = query.where(tuple_(f.c.paid_at, f.c.id) > tuple_(paid_at, last_id))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    last = rows[limit - 1] if len(rows) > limit else None
    return FulfillmentsPage(
        items=[_public(r) for r in rows[:limit]],
        next_cursor=encode_cursor(last.paid_at.isoformat(), last.id) if last else None,
    )


async def _act(engine, fulfillment_id: str, action: Callable[[Fulfillment], None]) -> FulfillmentPublic:
    async with engine.begin() as conn:
        await handlers.advance(conn, fulfillment_id, action)
        row = (await conn.execute(select(fulfillments).where(fulfillments.c.id == fulfillment_id))).one()
    return _public(row)


def _actor(user) -> str:
    return f"user:{user.sub}"


@router.post("/fulfillments/{fulfillment_id}/purchase", tags=["fulfillment"], summary="Bought from the factory")
async def purchase(fulfillment_id: str, user: Ops, engine: Engine) -> FulfillmentPublic:
    return await _act(engine, fulfillment_id, lambda job: job.complete_purchase(_actor(user)))


@router.post(
    "/fulfillments/{fulfillment_id}/quality-check",
    tags=["fulfillment"],
    summary="Pass, or fail with notes (the goods are bought again)",
)
async def quality_check(fulfillment_id: str, body: QualityCheck, user: Ops, engine: Engine) -> FulfillmentPublic:
    def act(job: Fulfillment) -> None:
        if body.passed:
            job.pass_quality_check(_actor(user))
        else:
            job.fail_quality_check(body.notes or "no notes", _actor(user))

    return await _act(engine, fulfillment_id, act)


@router.post(
    "/fulfillments/{fulfillment_id}/pack", tags=["fulfillment"], summary="Packed with the merchant's packaging"
)
async def pack(fulfillment_id: str, user: Ops, engine: Engine) -> FulfillmentPublic:
    return await _act(engine, fulfillment_id, lambda job: job.complete_packing(_actor(user)))


@router.post("/fulfillments/{fulfillment_id}/label", tags=["fulfillment"], summary="Carrier and tracking number")
async def label(fulfillment_id: str, body: Label, user: Ops, engine: Engine) -> FulfillmentPublic:
    return await _act(
        engine, fulfillment_id, lambda job: job.assign_label(body.carrier, body.tracking_number, _actor(user))
    )


@router.post("/fulfillments/{fulfillment_id}/ship", tags=["fulfillment"], summary="Handed to the carrier")
async def ship(fulfillment_id: str, user: Ops, engine: Engine) -> FulfillmentPublic:
    return await _act(engine, fulfillment_id, lambda job: job.ship(_actor(user)))


@router.get("/shipments/{shipment_id}", tags=["shipments"], summary="One shipment")
async def get_shipment(shipment_id: str, user: AnyUser, engine: Engine) -> ShipmentPublic:
    query = select(shipments).where(shipments.c.id == shipment_id)
    if user.role != "ops":
        query = query.where(shipments.c.merchant_id == user.merchant_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"shipment {shipment_id} not found")
    return ShipmentPublic.model_validate(dict(row._mapping))

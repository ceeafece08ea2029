"""Use cases of the tracking service."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tracking.adapters.tables import fulfillment_history, fulfillments, outbox, shipments
from services.tracking.domain.carriers import tracking_url
from services.tracking.domain.fulfillment import Fulfillment, Step
from shared.clock import utcnow
from shared.errors import Conflict, NotFound
from shared.events import OrderPaid, OrderShipped, OrderShippedPayload
from shared.messaging.outbox import add_events


async def on_order_paid(conn: AsyncConnection, event: OrderPaid) -> None:
    """One fulfillment job per paid order; a redelivered payment event finds it already there."""
    fulfillment_id = str(uuid.uuid4())
    created = (
        await conn.execute(
            pg_insert(fulfillments)
            .values(
                id=fulfillment_id,
                order_id=event.order_id,
                merchant_id=event.merchant_id,
                payment_id=event.payload.payment_id,
                step=Step.PURCHASING.value,
                order=event.payload.order.model_dump(mode="json"),
                shipping_method=event.payload.shipping.name if event.payload.shipping else None,
                paid_at=event.occurred_at,
            )
            .on_conflict_do_nothing()
            .returning(fulfillments.c.id)
        )
    ).first()
    if created:
        await conn.execute(
            insert(fulfillment_history).values(
                fulfillment_id=fulfillment_id,
                step=Step.PURCHASING.value,
                detail="paid: buy from the factory",
                actor=f"event:{event.event_type}",
            )
        )


async def _load(conn: AsyncConnection, fulfillment_id: str) -> Fulfillment:
    row = (
        await conn.execute(select(fulfillments).where(fulfillments.c.id == fulfillment_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"fulfillment {fulfillment_id} not found")
    return Fulfillment(
        id=row.id,
        order_id=row.order_id,
        merchant_id=row.merchant_id,
        step=Step(row.step),
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        version=row.version,
    )


async def _save(conn: AsyncConnection, job: Fulfillment) -> None:
    await conn.execute(
        update(fulfillments)
        .where(fulfillments.c.id == job.id)
        .values(
            step=job.step.value,
            carrier=job.carrier,
            tracking_number=job.tracking_number,
            version=fulfillments.c.version + 1,
        )
    )
    if job.history:
        await conn.execute(
            insert(fulfillment_history),
            [
                {"fulfillment_id": job.id, "step": h.step.value, "detail": h.detail, "actor": h.actor}
                for h in job.history
            ],
        )


async def advance(conn: AsyncConnection, fulfillment_id: str, action: Callable[[Fulfillment], None]) -> Fulfillment:
    job = await _load(conn, fulfillment_id)
    action(job)
    if job.step == Step.SHIPPED:
        await _record_shipment(conn, job)
    await _save(conn, job)
    return job


async def _record_shipment(conn: AsyncConnection, job: Fulfillment) -> None:
    assert job.carrier and job.tracking_number
    taken = (
        await conn.execute(select(shipments.c.fulfillment_id).where(shipments.c.tracking_number == job.tracking_number))
    ).first()
    if taken is not None:
        raise Conflict(f"tracking number {job.tracking_number} belongs to another shipment")
    shipment_id, shipped_at = str(uuid.uuid4()), utcnow()
    url = tracking_url(job.carrier, job.tracking_number)
    await conn.execute(
        insert(shipments).values(
            id=shipment_id,
            fulfillment_id=job.id,
            order_id=job.order_id,
            merchant_id=job.merchant_id,
            carrier=job.carrier,
            tracking_number=job.tracking_number,
            tracking_url=url,
            shipped_at=shipped_at,
        )
    )
    await add_events(
        conn,
        outbox,
        OrderShipped(
            merchant_id=job.merchant_id,
            order_id=job.order_id,
            payload=OrderShippedPayload(
                shipment_id=shipment_id,
                fulfillment_id=job.id,
                carrier=job.carrier,
                tracking_number=job.tracking_number,
                tracking_url=url,
                shipped_at=shipped_at,
            ),
        ),
    )

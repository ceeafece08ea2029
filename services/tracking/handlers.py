"""Use cases of the tracking service: each runs in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tracking.adapters.mail import PermanentFailure, SmtpMailer, render_shipped
from services.tracking.adapters.tables import (
    carrier_events,
    checkpoints,
    emails,
    fulfillment_history,
    fulfillments,
    outbox,
    shipments,
)
from services.tracking.domain import notification, timeline
from services.tracking.domain.carriers import tracking_url
from services.tracking.domain.fulfillment import Fulfillment, Step
from services.tracking.settings import TrackingSettings
from shared.clock import utcnow
from shared.errors import Conflict, NotFound
from shared.events import (
    OrderPaid,
    OrderShipped,
    OrderShippedPayload,
    PayableOrderPayload,
    ReshipmentApproved,
    ShipmentStatusChanged,
    ShipmentStatusChangedPayload,
    ShippingChoice,
)
from shared.logging import get_logger
from shared.messaging.outbox import add_events

log = get_logger(__name__)

# --- fulfillment jobs ------------------------------------------------------------------------------------------


async def _open(
    conn: AsyncConnection,
    *,
    event: OrderPaid | ReshipmentApproved,
    order: PayableOrderPayload,
    shipping: ShippingChoice | None,
    payment_id: str | None = None,
    reshipment_id: str | None = None,
    reship_of: str | None = None,
    detail: str,
) -> None:
    """A new job in purchasing; a redelivered event meets the unique index and changes nothing."""
    fulfillment_id = str(uuid.uuid4())
    created = (
        await conn.execute(
            pg_insert(fulfillments)
            .values(
                id=fulfillment_id,
                order_id=event.order_id,
                merchant_id=event.merchant_id,
                payment_id=payment_id,
                reshipment_id=reshipment_id,
                reship_of=reship_of,
                step=Step.PURCHASING.value,
                order=order.model_dump(mode="json"),
                shipping=shipping.model_dump(mode="json") if shipping else None,
                shipping_method=shipping.name if shipping else None,
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
                detail=detail,
                actor=f"event:{event.event_type}",
            )
        )


async def on_order_paid(conn: AsyncConnection, event: OrderPaid) -> None:
    """One fulfillment job per paid order and payment."""
    p = event.payload
    await _open(
        conn,
        event=event,
        order=p.order,
        shipping=p.shipping,
        payment_id=p.payment_id,
        detail="paid: buy from the factory",
    )


async def on_reshipment_approved(conn: AsyncConnection, event: ReshipmentApproved) -> None:
    """A new job for the lines to send again, linked to the order's first fulfillment (when tracking has it)."""
    p = event.payload
    first = (
        await conn.execute(
            select(fulfillments.c.id)
            .where(fulfillments.c.order_id == event.order_id, fulfillments.c.reshipment_id.is_(None))
            .order_by(fulfillments.c.paid_at)
            .limit(1)
        )
    ).scalar()
    await _open(
        conn,
        event=event,
        order=p.order,
        shipping=p.shipping,
        reshipment_id=p.reshipment_id,
        reship_of=first,
        detail=f"reshipment approved: {p.reason}",
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
    """One warehouse step; the row lock makes concurrent clicks on one job run one after the other."""
    job = await _load(conn, fulfillment_id)
    action(job)
    if job.step == Step.SHIPPED:
        await _record_shipment(conn, job)
    await _save(conn, job)
    return job


# --- shipments -------------------------------------------------------------------------------------------------


async def _record_shipment(conn: AsyncConnection, job: Fulfillment) -> None:
    """The shipment, its OrderShipped event and its customer email row, all in the ship step's transaction: the
    unique shipment per fulfillment and email per shipment make a retried ship unable to send twice."""
    assert job.carrier and job.tracking_number
    taken = (
        await conn.execute(select(shipments.c.fulfillment_id).where(shipments.c.tracking_number == job.tracking_number))
    ).first()
    if taken is not None:
        raise Conflict(f"tracking number {job.tracking_number} belongs to another shipment")
    row = (
        await conn.execute(
            select(fulfillments.c.order, fulfillments.c.reshipment_id).where(fulfillments.c.id == job.id)
        )
    ).one()
    order = PayableOrderPayload.model_validate(row.order)
    shipment_id, shipped_at = str(uuid.uuid4()), utcnow()
    url = tracking_url(job.carrier, job.tracking_number)
    await conn.execute(
        insert(shipments).values(
            id=shipment_id,
            fulfillment_id=job.id,
            order_id=job.order_id,
            merchant_id=job.merchant_id,
            reshipment_id=row.reshipment_id,
            carrier=job.carrier,
            tracking_number=job.tracking_number,
            tracking_url=url,
            destination_country=order.shipping_address.country_code,
            items=[{"sku": li.sku, "title": li.title, "quantity": li.quantity} for li in order.lines],
            shipped_at=shipped_at,
        )
    )
    await _queue_email(conn, shipment_id, job, order, url)
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
                reshipment_id=row.reshipment_id,
                store_id=order.store_id,
            ),
        ),
    )


async def _queue_email(
    conn: AsyncConnection, shipment_id: str, job: Fulfillment, order: PayableOrderPayload, url: str
) -> None:
    language = notification.language_for(order.customer_locale)
    rendered = render_shipped(
        language,
        store_name=order.store_name or notification.STORE_FALLBACK[language],
        order_name=order.order_name,
        customer_name=order.shipping_address.name,
        carrier=job.carrier,
        tracking_number=job.tracking_number,
        tracking_url=url,
        items=order.lines,
    )
    if order.customer_notified_by_store:
        status, reason = "skipped", "the store platform emails the customer itself"
    elif reason := notification.invalid_address_reason(order.customer_email):
        status = "failed"
    else:
        status = "pending"
    await conn.execute(
        insert(emails).values(
            id=str(uuid.uuid4()),
            shipment_id=shipment_id,
            merchant_id=job.merchant_id,
            recipient=order.customer_email,
            language=language,
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            from_name=order.store_name,
            status=status,
            last_error=reason,
        )
    )


# --- the customer's email --------------------------------------------------------------------------------------


async def send_next_email(conn: AsyncConnection, mailer: SmtpMailer, settings: TrackingSettings) -> bool:
    """Send one due email; False when none is due.

    The row stays locked (FOR UPDATE SKIP LOCKED) from claim to commit, so two senders never send the same email.
    What remains is at-least-once: if the process dies after the server accepted the message and before this
    transaction commits, the email is sent again, with the same Message-ID (derived from the shipment) so that a
    receiving system that deduplicates by Message-ID can recognise it.
    """
    row = (
        await conn.execute(
            select(emails)
            .where(emails.c.status == "pending", emails.c.next_attempt_at <= func.now())
            .order_by(emails.c.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).first()
    if row is None:
        return False
    attempts = row.attempts + 1
    values: dict[str, object] = {"attempts": attempts}
    try:
        await mailer.send(
            recipient=row.recipient,
            subject=row.subject,
            text=row.text_body,
            html=row.html_body,
            message_id=notification.message_id(row.shipment_id, settings.email_from),
            store_name=row.from_name,
        )
    except Exception as exc:
        given_up = isinstance(exc, PermanentFailure) or attempts >= settings.email_max_attempts
        values |= {"last_error": f"{type(exc).__name__}: {exc}"[:1000]}
        if given_up:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = utcnow() + notification.retry_delay(attempts, settings.email_retry_base_seconds)
        log.warning("email.failed", shipment_id=row.shipment_id, attempts=attempts, given_up=given_up, error=repr(exc))
    else:
        values |= {"status": "sent", "sent_at": utcnow()}
    await conn.execute(update(emails).where(emails.c.id == row.id).values(**values))
    return True


# --- carrier tracking ------------------------------------------------------------------------------------------


async def record_carrier_event(
    conn: AsyncConnection,
    *,
    event_id: str,
    tracking_number: str,
    scans: list[timeline.Checkpoint],
    body: dict,
) -> Literal["recorded", "duplicate", "unmatched"]:
    """Store a carrier webhook once per event id and fold its checkpoints into the shipment's timeline.

    An event for a number no shipment has is kept (shipment_id null) for ops; a redelivery of it matches again,
    so an event that arrived before its shipment is not lost."""
    shipment = (
        await conn.execute(select(shipments).where(shipments.c.tracking_number == tracking_number).with_for_update())
    ).first()
    stored = (
        await conn.execute(
            pg_insert(carrier_events)
            .values(
                event_id=event_id,
                tracking_number=tracking_number,
                shipment_id=shipment.id if shipment else None,
                body=body,
            )
            .on_conflict_do_nothing()
            .returning(carrier_events.c.event_id)
        )
    ).first()
    if shipment is None:
        return "unmatched"
    if stored is None:  # seen before: a no-op, unless it was kept unmatched and its shipment exists now
        rematched = await conn.execute(
            update(carrier_events)
            .where(carrier_events.c.event_id == event_id, carrier_events.c.shipment_id.is_(None))
            .values(shipment_id=shipment.id)
            .returning(carrier_events.c.event_id)
        )
        if rematched.first() is None:
            return "duplicate"
    await conn.execute(
        pg_insert(checkpoints)
        .values(
            [
                {
                    "shipment_id": shipment.id,
                    "checkpoint_at": c.at,
                    "status": c.status,
                    "message": c.message,
                    "location": c.location,
                    "country": c.country,
                }
                for c in scans
            ]
        )
        .on_conflict_do_nothing()
    )
    known = (
        await conn.execute(
            select(checkpoints.c.checkpoint_at, checkpoints.c.status, checkpoints.c.message)
            .where(checkpoints.c.shipment_id == shipment.id)
            .order_by(checkpoints.c.id)
        )
    ).all()
    latest = timeline.current([timeline.Checkpoint(r.checkpoint_at, r.status, r.message) for r in known])
    assert latest is not None
    if (latest.status, latest.at) != (shipment.status, shipment.status_at):
        await conn.execute(
            update(shipments).where(shipments.c.id == shipment.id).values(status=latest.status, status_at=latest.at)
        )
    if announced := timeline.announcement(shipment.status, latest):
        await add_events(
            conn,
            outbox,
            ShipmentStatusChanged(
                merchant_id=shipment.merchant_id,
                order_id=shipment.order_id,
                payload=ShipmentStatusChangedPayload(
                    shipment_id=shipment.id,
                    tracking_number=tracking_number,
                    status=announced.status,
                    checkpoint_at=announced.at.astimezone(UTC),
                    message=announced.message,
                ),
            ),
        )
    return "recorded"

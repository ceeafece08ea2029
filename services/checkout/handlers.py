"""Use cases of the checkout service."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.checkout.adapters.tables import (
    checkout_orders,
    checkouts,
    ledger_entries,
    outbox,
    payable_orders,
    payments,
    wallets,
)
from services.checkout.domain import ledger
from services.checkout.domain.pricing import price
from shared.errors import Conflict, NotFound, PaymentRequired, Unprocessable
from shared.events import (
    OrderPaid,
    OrderPaidPayload,
    OrderReadyForCheckout,
    OrderStatusChanged,
    PayableOrderPayload,
    PaymentPayload,
    PaymentStarted,
)
from shared.messaging.outbox import add_events
from shared.money import Money

PAYABLE = ("to_order", "pending")

# --- events in ---------------------------------------------------------------------------------------------------


async def on_order_ready(conn: AsyncConnection, event: OrderReadyForCheckout) -> None:
    values = {
        "merchant_id": event.merchant_id,
        "status": "to_order",
        "status_reason": None,
        "currency": event.payload.currency,
        "order": event.payload.model_dump(mode="json"),
    }
    statement = pg_insert(payable_orders).values(order_id=event.order_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[payable_orders.c.order_id],
            set_=values,
            where=payable_orders.c.status != "paid",  # a paid order's snapshot never changes
        )
    )


async def on_order_status_changed(conn: AsyncConnection, event: OrderStatusChanged) -> None:
    """An order that left To Order (cancelled, back to Quoting) can no longer be paid."""
    if event.payload.to_status in ("quoting", "cancelled"):
        await conn.execute(
            update(payable_orders)
            .where(payable_orders.c.order_id == event.order_id, payable_orders.c.status.in_(PAYABLE))
            .values(status="unavailable", status_reason=f"the order is {event.payload.to_status}")
        )


# --- checkout ----------------------------------------------------------------------------------------------------


async def _lock_payable(conn: AsyncConnection, merchant_id: str, order_ids: list[str]) -> list:
    rows = (
        await conn.execute(
            select(payable_orders)
            .where(payable_orders.c.order_id.in_(order_ids), payable_orders.c.merchant_id == merchant_id)
            .order_by(payable_orders.c.order_id)  # one lock order everywhere: no deadlocks between checkouts
            .with_for_update()
        )
    ).all()
    found = {r.order_id for r in rows}
    missing = [o for o in order_ids if o not in found]
    if missing:
        raise NotFound(f"orders not found or not ready to order: {', '.join(missing)}")
    for r in rows:
        if r.status not in PAYABLE:
            reason = f" ({r.status_reason})" if r.status_reason else ""
            raise Conflict(f"order {r.order_id} cannot be paid: it is {r.status}{reason}")
    return rows


async def create_checkout(conn: AsyncConnection, merchant_id: str, order_ids: list[str]) -> str:
    rows = await _lock_payable(conn, merchant_id, list(dict.fromkeys(order_ids)))
    currencies = {r.currency for r in rows}
    if len(currencies) != 1:
        raise Unprocessable(f"orders in one checkout must share a currency, got {', '.join(sorted(currencies))}")
    priced = [(r, price(PayableOrderPayload.model_validate(r.order))) for r in rows]
    checkout_id = str(uuid.uuid4())
    await conn.execute(
        insert(checkouts).values(
            id=checkout_id,
            merchant_id=merchant_id,
            status="open",
            currency=currencies.pop(),
            total=sum((b.total for _, b in priced), Decimal(0)),
        )
    )
    await conn.execute(
        insert(checkout_orders),
        [
            {"checkout_id": checkout_id, "order_id": r.order_id, "breakdown": b.as_dict(), "order": r.order}
            for r, b in priced
        ],
    )
    return checkout_id


async def get_checkout(conn: AsyncConnection, merchant_id: str, checkout_id: str, *, lock: bool = False):
    query = select(checkouts).where(checkouts.c.id == checkout_id, checkouts.c.merchant_id == merchant_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound(f"checkout {checkout_id} not found")
    lines = (
        await conn.execute(
            select(checkout_orders)
            .where(checkout_orders.c.checkout_id == checkout_id)
            .order_by(checkout_orders.c.order_id)
        )
    ).all()
    return row, lines


async def pay_with_balance(conn: AsyncConnection, merchant_id: str, checkout_id: str) -> str:
    """Charge the wallet for every order of the checkout at once; each order is announced paid."""
    checkout, lines = await get_checkout(conn, merchant_id, checkout_id, lock=True)
    if checkout.status != "open":
        raise Conflict(f"checkout {checkout_id} is {checkout.status}")
    await _lock_payable(conn, merchant_id, [line.order_id for line in lines])
    total = Decimal(checkout.total)
    wallet = (
        await conn.execute(
            select(wallets)
            .where(wallets.c.merchant_id == merchant_id, wallets.c.currency == checkout.currency)
            .with_for_update()
        )
    ).first()
    try:
        ledger.check_can_spend(
            Decimal(wallet.balance) if wallet else Decimal(0),
            Decimal(wallet.credit_limit) if wallet else Decimal(0),
            total,
            checkout.currency,
        )
    except ledger.InsufficientBalance as exc:
        raise PaymentRequired(str(exc), shortfall={"amount": str(exc.shortfall), "currency": exc.currency}) from exc
    payment_id = str(uuid.uuid4())
    await _post(
        conn,
        merchant_id,
        checkout.currency,
        "charge",
        f"payment:{payment_id}",
        ledger.transfer(ledger.wallet_account(merchant_id), ledger.ORDER_PAYMENTS, total),
    )
    await conn.execute(
        insert(payments).values(
            id=payment_id,
            checkout_id=checkout_id,
            merchant_id=merchant_id,
            method="balance",
            amount=total,
            currency=checkout.currency,
            status="succeeded",
        )
    )
    await conn.execute(update(checkouts).where(checkouts.c.id == checkout_id).values(status="paid"))
    await conn.execute(
        update(payable_orders)
        .where(payable_orders.c.order_id.in_([line.order_id for line in lines]))
        .values(status="paid", status_reason=None)
    )
    events = []
    for line in lines:
        amount = Money.of(line.breakdown["total"], checkout.currency)
        payment = PaymentPayload(payment_id=payment_id, method="balance", amount=amount)
        events.append(PaymentStarted(merchant_id=merchant_id, order_id=line.order_id, payload=payment))
        events.append(
            OrderPaid(
                merchant_id=merchant_id,
                order_id=line.order_id,
                payload=OrderPaidPayload(**payment.model_dump(), order=PayableOrderPayload.model_validate(line.order)),
            )
        )
    await add_events(conn, outbox, *events)
    return payment_id


# --- balance -----------------------------------------------------------------------------------------------------


async def _post(
    conn: AsyncConnection, merchant_id: str, currency: str, kind: str, reference: str, postings: list[ledger.Posting]
) -> None:
    """Write one balanced transaction and keep the wallet's cached balance equal to the sum of its postings."""
    transaction_id = uuid.uuid4()
    await conn.execute(
        insert(ledger_entries),
        [
            {
                "transaction_id": transaction_id,
                "account": p.account,
                "merchant_id": merchant_id,
                "amount": p.amount,
                "currency": currency,
                "kind": kind,
                "reference": reference,
            }
            for p in postings
        ],
    )
    wallet_delta = sum((p.amount for p in postings if p.account == ledger.wallet_account(merchant_id)), Decimal(0))
    await conn.execute(
        pg_insert(wallets).values(merchant_id=merchant_id, currency=currency, balance=0).on_conflict_do_nothing()
    )
    await conn.execute(
        update(wallets)
        .where(wallets.c.merchant_id == merchant_id, wallets.c.currency == currency)
        .values(balance=wallets.c.balance + wallet_delta)
    )


async def top_up(conn: AsyncConnection, merchant_id: str, amount: Money, reference: str) -> None:
    await _post(
        conn,
        merchant_id,
        amount.currency,
        "top_up",
        reference,
        ledger.transfer(ledger.TOP_UPS, ledger.wallet_account(merchant_id), amount.amount),
    )

"""Use cases of the checkout service."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Update, func, insert, select, update
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.checkout import shipping_handlers
from services.checkout.adapters import shipping_repo
from services.checkout.adapters.payment_provider import (
    PaymentProvider,
    ProviderRejected,
    ProviderUnavailable,
    default_provider,
)
from services.checkout.adapters.tables import (
    checkout_orders,
    checkouts,
    ledger_entries,
    outbox,
    payable_orders,
    payments,
    refunds,
    wallets,
)
from services.checkout.domain import ledger
from services.checkout.domain.pricing import price
from services.checkout.domain.shipping import Unavailable, parcel_of, quote
from services.checkout.settings import get_settings
from shared.db import records
from shared.errors import Conflict, NotFound, PaymentRequired, ProblemError, Unprocessable
from shared.events import (
    OrderPaid,
    OrderPaidPayload,
    OrderReadyForCheckout,
    OrderStatusChanged,
    PayableOrderPayload,
    PaymentFailed,
    PaymentFailedPayload,
    PaymentPayload,
    PaymentStarted,
    RefundApproved,
    RefundCompleted,
    RefundCompletedPayload,
    RefundFailed,
    RefundFailedPayload,
    ShippingChoice,
)
from shared.messaging.outbox import add_events
from shared.money import Money

PAYABLE = ("to_order", "pending")
LEFT_TO_ORDER = ("quoting", "cancelled")  # statuses an order leaves To Order for and cannot be paid in
PAYMENT_IDS = uuid.UUID("5b0c6f43-5a0e-4d3c-9a55-1f9b3c1e7d20")  # namespace of the payment ids derived below


class BadGateway(ProblemError):
    status, title = 502, "Bad gateway"


# --- events in ---------------------------------------------------------------------------------------------------


async def on_orders_ready(conn: AsyncConnection, events: list[OrderReadyForCheckout]) -> None:
    """Keep the orders payable, with the methods their merchants' shipping rules choose, in one statement. An order
    given twice ends as its last event makes it, as one by one would: only that event is written (PostgreSQL cannot
    update a row twice in one statement), and the rules run once on it."""
    latest = {e.order_id: e for e in events}
    by_merchant: dict[str, list[OrderReadyForCheckout]] = defaultdict(list)
    for e in latest.values():
        by_merchant[e.merchant_id].append(e)
    rows = []
    for merchant_id, ready in by_merchant.items():
        shipping = await shipping_handlers.load(conn, merchant_id)  # once per merchant, for all its orders
        rows += [
            {
                "order_id": e.order_id,
                "merchant_id": e.merchant_id,
                "status": "to_order",
                "status_reason": None,
                "currency": e.payload.currency,
                "order": e.payload.model_dump(mode="json"),
                **shipping_handlers.chosen(shipping.select(e.payload)),
            }
            for e in ready
        ]
    if rows:
        await conn.execute(_UPSERT_READY, {"records": rows})


def _upsert_ready() -> Insert:
    """All the rows in one execution of one prepared statement, inserted in order_id order: they are locked in the
    order checkouts lock them. A paid order's snapshot never changes; one being paid by card keeps its state (and
    its method) until the provider answers."""
    ready = records(payable_orders)
    columns = (
        "order_id",
        "merchant_id",
        "status",
        "status_reason",
        "currency",
        "order",
        *shipping_handlers.CHOICE_COLUMNS,
    )
    statement = pg_insert(payable_orders).from_select(
        columns, select(*(ready.c[name] for name in columns)).order_by(ready.c.order_id)
    )
    return statement.on_conflict_do_update(
        index_elements=[payable_orders.c.order_id],
        set_={name: statement.excluded[name] for name in columns if name != "order_id"},
        where=payable_orders.c.status.not_in(("paid", "paying")),
    )


_UPSERT_READY = _upsert_ready()


async def on_order_statuses_changed(conn: AsyncConnection, events: list[OrderStatusChanged]) -> None:
    """An order that left To Order (cancelled, back to Quoting) can no longer be paid. Only its first departure in
    the batch counts, as one by one: that one makes it unavailable, and no status change after it (not even back to
    To Order) touches it again; only OrderReadyForCheckout makes an order payable again."""
    reasons: dict[str, str] = {}
    for e in events:
        if e.payload.to_status in LEFT_TO_ORDER:
            reasons.setdefault(e.order_id, f"the order is {e.payload.to_status}")
    if reasons:
        rows = [{"order_id": order_id, "status_reason": reason} for order_id, reason in reasons.items()]
        await conn.execute(_MAKE_UNAVAILABLE, {"records": rows})


def _make_unavailable() -> Update:
    """The payable ones of the rows given (order_id, status_reason) made unavailable, in one statement. They are
    locked first in order_id order, as checkouts lock them: the update itself may visit them in any order."""
    left = records(payable_orders)
    locked = (
        select(payable_orders.c.order_id, left.c.status_reason)
        .join_from(payable_orders, left, payable_orders.c.order_id == left.c.order_id)
        .where(payable_orders.c.status.in_(PAYABLE))
        .order_by(payable_orders.c.order_id)
        .with_for_update(of=payable_orders)
        .subquery("locked")
    )
    return (
        update(payable_orders)
        .where(payable_orders.c.order_id == locked.c.order_id)
        .values(status="unavailable", status_reason=locked.c.status_reason)
    )


_MAKE_UNAVAILABLE = _make_unavailable()


async def on_order_events(conn: AsyncConnection, events: list[OrderReadyForCheckout | OrderStatusChanged]) -> None:
    """A run of both kinds, as the orders service publishes them (each order's status changes, then its
    OrderReadyForCheckout), applied with a few statements for the whole run. An order's last OrderReadyForCheckout
    makes it payable whatever came before it (unless paid or being paid, which nothing here changes), so only the
    status changes after it still count."""
    last_ready = {e.order_id: i for i, e in enumerate(events) if isinstance(e, OrderReadyForCheckout)}
    await on_orders_ready(conn, [events[i] for i in sorted(last_ready.values())])
    await on_order_statuses_changed(
        conn,
        [e for i, e in enumerate(events) if isinstance(e, OrderStatusChanged) and i > last_ready.get(e.order_id, -1)],
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
            state = "being paid by card" if r.status == "paying" else r.status
            raise Conflict(f"order {r.order_id} cannot be paid: it is {state}{reason}", current_status=r.status)
    return rows


def _choose_shipping(row, order: PayableOrderPayload, methods: dict, chosen: str | None) -> ShippingChoice:
    """The order's method: the merchant's choice in this checkout, else the one the rules picked."""
    method_id = chosen or row.shipping_method_id
    if chosen is None and row.shipping_problem:
        raise Conflict(
            f"order {row.order_id} is flagged: {row.shipping_problem}; choose another shipping method for it",
            current_status="shipping_unavailable",
        )
    if method_id is None:
        raise Conflict(
            f"order {row.order_id} has no shipping method: no shipping rule matched and no default method is set;"
            " choose one for it, or set a default and re-run the rules",
            current_status="no_shipping_method",
        )
    method = methods.get(method_id)
    if method is None:
        raise Unprocessable(f"unknown shipping method {method_id}", errors=[{"field": f"shipping.{row.order_id}"}])
    answer = quote(method, parcel_of(order))
    if isinstance(answer, Unavailable):
        raise Unprocessable(
            f"{method.name} cannot ship order {row.order_id}: {answer.reason}",
            errors=[{"field": f"shipping.{row.order_id}", "message": answer.reason}],
        )
    return ShippingChoice(
        method_id=method.id,
        name=method.name,
        carrier=method.carrier,
        price=Money.of(answer.price, order.currency),
        delivery_days_min=method.delivery_days_min,
        delivery_days_max=method.delivery_days_max,
        rule_id=None if chosen else row.shipping_rule_id,
        rule_reason="chosen by the merchant at checkout" if chosen else row.shipping_reason,
    )


async def create_checkout(
    conn: AsyncConnection, merchant_id: str, order_ids: list[str], shipping: dict[str, str] | None = None
) -> str:
    """Price the orders with their shipping and fees, and snapshot it all."""
    shipping = shipping or {}
    order_ids = list(dict.fromkeys(order_ids))
    strays = sorted(set(shipping) - set(order_ids))
    if strays:
        raise Unprocessable(f"shipping given for orders not in the checkout: {', '.join(strays)}")
    rows = await _lock_payable(conn, merchant_id, order_ids)
    currencies = {r.currency for r in rows}
    if len(currencies) != 1:
        raise Unprocessable(f"orders in one checkout must share a currency, got {', '.join(sorted(currencies))}")
    methods = {m.id: m for m in await shipping_repo.load_methods(conn)}
    fee = get_settings().order_fee
    lines = []
    for r in rows:
        order = PayableOrderPayload.model_validate(r.order)
        choice = _choose_shipping(r, order, methods, shipping.get(r.order_id))
        costs = price(order, shipping=choice.price.amount, fees=fee)
        lines.append((r, costs, choice))
    checkout_id = str(uuid.uuid4())
    await conn.execute(
        insert(checkouts).values(
            id=checkout_id,
            merchant_id=merchant_id,
            status="open",
            currency=currencies.pop(),
            total=sum((costs.total for _, costs, _ in lines), Decimal(0)),
        )
    )
    await conn.execute(
        insert(checkout_orders),
        [
            {
                "checkout_id": checkout_id,
                "order_id": r.order_id,
                "breakdown": costs.as_dict(),
                "order": r.order,
                "shipping": choice.model_dump(mode="json"),
            }
            for r, costs, choice in lines
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


async def latest_payment(conn: AsyncConnection, checkout_id: str):
    return (
        await conn.execute(
            select(payments).where(payments.c.checkout_id == checkout_id).order_by(payments.c.created_at.desc())
        )
    ).first()


# --- payments ----------------------------------------------------------------------------------------------------


async def _open_for_payment(conn: AsyncConnection, merchant_id: str, checkout_id: str, expected: Money | None):
    """Lock the checkout and its orders; refuse what cannot be paid now."""
    checkout, lines = await get_checkout(conn, merchant_id, checkout_id, lock=True)
    if checkout.status != "open":
        state = "being paid by card" if checkout.status == "paying" else checkout.status
        raise Conflict(f"checkout {checkout_id} is {state}", current_status=checkout.status)
    if expected is not None:
        if expected.currency != checkout.currency:
            raise Unprocessable(
                f"currency mismatch: the checkout is in {checkout.currency}, not {expected.currency}",
                errors=[{"field": "amount.currency"}],
            )
        if expected.amount != checkout.total:
            raise Unprocessable(
                f"the checkout's total is {checkout.total} {checkout.currency}, not {expected.amount}",
                errors=[{"field": "amount.amount"}],
            )
    await _lock_payable(conn, merchant_id, [line.order_id for line in lines])
    return checkout, lines


def _payment(line, payment_id: str, method: str, currency: str) -> PaymentPayload:
    return PaymentPayload(payment_id=payment_id, method=method, amount=Money.of(line.breakdown["total"], currency))


def _paid_events(checkout, lines, payment_id: str, method: str) -> list:
    return [
        OrderPaid(
            merchant_id=checkout.merchant_id,
            order_id=line.order_id,
            payload=OrderPaidPayload(
                **_payment(line, payment_id, method, checkout.currency).model_dump(),
                shipping=ShippingChoice.model_validate(line.shipping) if line.shipping else None,
                order=PayableOrderPayload.model_validate(line.order),
            ),
        )
        for line in lines
    ]


async def _set_orders(conn: AsyncConnection, lines, status: str, reason: str | None = None) -> None:
    await conn.execute(
        update(payable_orders)
        .where(payable_orders.c.order_id.in_([line.order_id for line in lines]))
        .values(status=status, status_reason=reason)
    )


async def pay_with_balance(
    conn: AsyncConnection, merchant_id: str, checkout_id: str, expected: Money | None = None
) -> str:
    """Charge the wallet for every order of the checkout at once; each order is announced paid."""
    checkout, lines = await _open_for_payment(conn, merchant_id, checkout_id, expected)
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
    await post(
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
    await _set_orders(conn, lines, "paid")
    started = [
        PaymentStarted(
            merchant_id=merchant_id,
            order_id=line.order_id,
            payload=_payment(line, payment_id, "balance", checkout.currency),
        )
        for line in lines
    ]
    await add_events(conn, outbox, *started, *_paid_events(checkout, lines, payment_id, "balance"))
    return payment_id


async def pay_with_card(
    conn: AsyncConnection,
    merchant_id: str,
    checkout_id: str,
    payment_method: str,
    expected: Money | None = None,
    provider: PaymentProvider | None = None,
) -> str:
    """Start a card payment. The provider's request is keyed by a payment id derived from the checkout and the
    attempt number, so a request whose transaction was lost (a crash after the provider answered) is replayed
    by the provider when the merchant retries, never charged twice. Success comes later, by webhook."""
    checkout, lines = await _open_for_payment(conn, merchant_id, checkout_id, expected)
    attempt = (
        await conn.execute(select(func.count()).select_from(payments).where(payments.c.checkout_id == checkout_id))
    ).scalar_one()
    payment_id = str(uuid.uuid5(PAYMENT_IDS, f"{checkout_id}:{attempt + 1}"))
    try:
        charge = await (provider or default_provider()).charge(
            amount=Money.of(checkout.total, checkout.currency),
            payment_method=payment_method,
            idempotency_key=payment_id,
            metadata={"payment_id": payment_id, "checkout_id": checkout_id, "merchant_id": merchant_id},
        )
    except ProviderUnavailable as exc:
        raise BadGateway(f"{exc}; nothing was charged twice: retry with the same Idempotency-Key") from exc
    except ProviderRejected as exc:
        raise Unprocessable(f"the card provider refused the payment: {exc}") from exc
    await conn.execute(
        insert(payments).values(
            id=payment_id,
            checkout_id=checkout_id,
            merchant_id=merchant_id,
            method="card",
            amount=checkout.total,
            currency=checkout.currency,
            status="processing",
            provider_ref=charge.provider_ref,
        )
    )
    started = [
        PaymentStarted(
            merchant_id=merchant_id,
            order_id=line.order_id,
            payload=_payment(line, payment_id, "card", checkout.currency),
        )
        for line in lines
    ]
    await add_events(conn, outbox, *started)
    await conn.execute(update(checkouts).where(checkouts.c.id == checkout_id).values(status="paying"))
    await _set_orders(conn, lines, "paying")
    if charge.status == "failed":
        await settle_card_payment(conn, charge.provider_ref, succeeded=False, reason=charge.failure_reason)
    return payment_id


async def settle_card_payment(
    conn: AsyncConnection,
    provider_ref: str,
    *,
    succeeded: bool,
    reason: str | None = None,
    amount: Money | None = None,
    checkout_id: str | None = None,
) -> str:
    """The provider's final word on a charge, applied once: duplicates and late events change nothing.
    Locking the checkout first makes a webhook that overtook the pay request wait for it to commit."""
    if checkout_id is not None:
        await conn.execute(select(checkouts.c.id).where(checkouts.c.id == checkout_id).with_for_update())
    payment = (await conn.execute(select(payments).where(payments.c.provider_ref == provider_ref))).first()
    if payment is None:
        raise NotFound(f"no payment for {provider_ref}")
    checkout, lines = await get_checkout(conn, payment.merchant_id, payment.checkout_id, lock=True)
    payment = (
        await conn.execute(select(payments).where(payments.c.id == payment.id).with_for_update())
    ).one()  # read again under the checkout's lock
    if payment.status != "processing":
        return "duplicate"
    if amount is not None and (amount.amount != payment.amount or amount.currency != payment.currency):
        raise Unprocessable(f"the provider reports {amount.amount} {amount.currency} for payment {payment.id}")
    if succeeded:
        await conn.execute(update(payments).where(payments.c.id == payment.id).values(status="succeeded"))
        await conn.execute(update(checkouts).where(checkouts.c.id == checkout.id).values(status="paid"))
        await _set_orders(conn, lines, "paid")
        await add_events(conn, outbox, *_paid_events(checkout, lines, payment.id, "card"))
        return "paid"
    reason = reason or "the card payment failed"
    await conn.execute(
        update(payments).where(payments.c.id == payment.id).values(status="failed", failure_reason=reason)
    )
    await conn.execute(update(checkouts).where(checkouts.c.id == checkout.id).values(status="open"))
    await _set_orders(conn, lines, "pending", f"payment failed: {reason}")
    failed = [
        PaymentFailed(
            merchant_id=checkout.merchant_id,
            order_id=line.order_id,
            payload=PaymentFailedPayload(
                **_payment(line, payment.id, "card", checkout.currency).model_dump(), reason=reason
            ),
        )
        for line in lines
    ]
    await add_events(conn, outbox, *failed)
    return "failed"


async def card_payments_to_reconcile(conn: AsyncConnection, older_than_seconds: float, limit: int = 50) -> list:
    """Card payments still processing long after they started: their confirmation may never come."""
    return (
        await conn.execute(
            select(payments.c.provider_ref, payments.c.checkout_id)
            .where(
                payments.c.method == "card",
                payments.c.status == "processing",
                payments.c.created_at < func.now() - timedelta(seconds=older_than_seconds),
            )
            .order_by(payments.c.created_at)
            .limit(limit)
        )
    ).all()


async def reconcile_card_payment(
    conn: AsyncConnection, provider_ref: str, checkout_id: str, provider: PaymentProvider | None = None
) -> str:
    """Ask the provider how a charge ended and settle it the way its webhook would have (once, whichever comes
    first)."""
    charge = await (provider or default_provider()).outcome(provider_ref)
    if charge.status == "processing":
        return "processing"
    return await settle_card_payment(
        conn,
        provider_ref,
        succeeded=charge.status == "succeeded",
        reason=charge.failure_reason,
        checkout_id=checkout_id,
    )


# --- refunds -----------------------------------------------------------------------------------------------------


async def on_refund_approved(
    conn: AsyncConnection, event: RefundApproved, provider: PaymentProvider | None = None
) -> None:
    """Pay an approved refund back the way the order was paid, once; announce the outcome either way.
    A card refund is keyed by the refund id at the provider, so a redelivered event is not refunded twice."""
    refund = event.payload
    if (await conn.execute(select(refunds.c.id).where(refunds.c.id == refund.refund_id))).first():
        return
    paid = (
        await conn.execute(
            select(payments, checkout_orders.c.breakdown)
            .join(checkout_orders, checkout_orders.c.checkout_id == payments.c.checkout_id)
            .where(checkout_orders.c.order_id == event.order_id, payments.c.status == "succeeded")
        )
    ).first()
    refunded = (
        await conn.execute(
            select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
                refunds.c.order_id == event.order_id, refunds.c.status == "completed"
            )
        )
    ).scalar_one()
    failure = None
    if paid is None:
        failure = "the order was not paid through checkout"
    elif refund.amount.currency != paid.currency:
        failure = f"currency mismatch: the order was paid in {paid.currency}"
    elif refund.amount.amount <= 0:
        failure = "a refund must be positive"
    elif refund.amount.amount > Decimal(paid.breakdown["total"]) - refunded:
        failure = f"only {Decimal(paid.breakdown['total']) - refunded} {paid.currency} of the order is left to refund"
    row = {
        "id": refund.refund_id,
        "order_id": event.order_id,
        "merchant_id": event.merchant_id,
        "amount": refund.amount.amount,
        "currency": refund.amount.currency,
        "payment_id": paid.id if paid else None,
        "method": paid.method if paid else None,
    }
    if failure is None and paid.method == "balance":
        await post(
            conn,
            event.merchant_id,
            paid.currency,
            "refund",
            f"refund:{refund.refund_id}",
            ledger.transfer(ledger.ORDER_PAYMENTS, ledger.wallet_account(event.merchant_id), refund.amount.amount),
        )
    elif failure is None:
        result = await (provider or default_provider()).refund(
            provider_ref=paid.provider_ref, amount=refund.amount, idempotency_key=f"refund:{refund.refund_id}"
        )  # ProviderUnavailable propagates: the event is retried, and the provider replays the same key
        row["provider_ref"] = result.provider_ref or None
        failure = result.failure_reason if not result.succeeded else None
    await conn.execute(
        insert(refunds).values(**row, status="failed" if failure else "completed", failure_reason=failure)
    )
    outcome = (
        RefundFailed(
            merchant_id=event.merchant_id,
            order_id=event.order_id,
            payload=RefundFailedPayload(refund_id=refund.refund_id, reason=failure),
        )
        if failure
        else RefundCompleted(
            merchant_id=event.merchant_id,
            order_id=event.order_id,
            payload=RefundCompletedPayload(refund_id=refund.refund_id, amount=refund.amount, method=paid.method),
        )
    )
    await add_events(conn, outbox, outcome)


# --- balance -----------------------------------------------------------------------------------------------------


async def post(
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
    await post(
        conn,
        merchant_id,
        amount.currency,
        "top_up",
        reference,
        ledger.transfer(ledger.TOP_UPS, ledger.wallet_account(merchant_id), amount.amount),
    )


async def set_credit_limit(conn: AsyncConnection, merchant_id: str, limit: Money) -> None:
    """Grant (or lower) a credit line; it can never be lowered below what the merchant already owes."""
    await conn.execute(
        pg_insert(wallets).values(merchant_id=merchant_id, currency=limit.currency, balance=0).on_conflict_do_nothing()
    )
    wallet = (
        await conn.execute(
            select(wallets)
            .where(wallets.c.merchant_id == merchant_id, wallets.c.currency == limit.currency)
            .with_for_update()
        )
    ).one()
    if wallet.balance + limit.amount < 0:
        raise Conflict(
            f"the balance is {wallet.balance} {limit.currency}: the credit line cannot be below {-wallet.balance}"
        )
    await conn.execute(
        update(wallets)
        .where(wallets.c.merchant_id == merchant_id, wallets.c.currency == limit.currency)
        .values(credit_limit=limit.amount)
    )

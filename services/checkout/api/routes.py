from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.checkout import handlers
from services.checkout.adapters.tables import idempotency_keys, ledger_entries, payments, wallets
from services.checkout.api.schemas import (
    BalancePublic,
    CheckoutCreate,
    CheckoutOrderPublic,
    CheckoutPublic,
    CostBreakdownPublic,
    CreditLineSet,
    LedgerEntryPublic,
    LedgerPage,
    PaymentPublic,
    PayRequest,
    TopUpCreate,
)
from services.checkout.domain.ledger import wallet_account
from shared.auth import Merchant, Ops
from shared.db import snapshot
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.idempotency import Idempotent
from shared.money import Money
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


def _payment_public(row) -> PaymentPublic:
    return PaymentPublic(
        payment_id=row.id,
        checkout_id=row.checkout_id,
        method=row.method,
        status=row.status,
        amount=Money.of(row.amount, row.currency),
        failure_reason=row.failure_reason,
    )


async def _checkout_public(conn: AsyncConnection, merchant_id: str, checkout_id: str) -> CheckoutPublic:
    row, lines = await handlers.get_checkout(conn, merchant_id, checkout_id)
    payment = await handlers.latest_payment(conn, checkout_id)

    def money(value: str) -> Money:
        return Money.of(value, row.currency)

    return CheckoutPublic(
        id=row.id,
        status=row.status,
        total=money(row.total),
        created_at=row.created_at,
        orders=[
            CheckoutOrderPublic(
                order_id=line.order_id,
                order_name=line.order["order_name"],
                costs=CostBreakdownPublic(**{k: money(v) for k, v in line.breakdown.items()}),
                shipping=line.shipping,
            )
            for line in lines
        ],
        last_payment=_payment_public(payment) if payment else None,
    )


@router.post(
    "/checkouts",
    status_code=201,
    tags=["checkout"],
    summary="Price one or many To Order orders together, with their shipping (prices are snapshotted)",
)
async def create_checkout(body: CheckoutCreate, user: Merchant, engine: Engine, once: Idempotent) -> CheckoutPublic:
    async def action() -> CheckoutPublic:
        checkout_id = await handlers.create_checkout(conn, user.merchant_id, body.order_ids, body.shipping)
        return await _checkout_public(conn, user.merchant_id, checkout_id)

    async with engine.begin() as conn:
        return await once.run(conn, idempotency_keys, f"{user.merchant_id}:create-checkout", action, status_code=201)


@router.get("/checkouts/{checkout_id}", tags=["checkout"], summary="A checkout with its cost breakdown")
async def get_checkout(checkout_id: str, user: Merchant, engine: Engine) -> CheckoutPublic:
    async with snapshot(engine) as conn:
        return await _checkout_public(conn, user.merchant_id, checkout_id)


@router.post(
    "/checkouts/{checkout_id}/pay",
    tags=["checkout"],
    summary="Pay a checkout from the balance or by card; retry-safe with Idempotency-Key",
    responses={402: PROBLEM_RESPONSES[422], 502: PROBLEM_RESPONSES[422]},
)
async def pay_checkout(
    checkout_id: str, body: PayRequest, user: Merchant, engine: Engine, request: Request, once: Idempotent
) -> PaymentPublic:
    """Balance: paid at once (402 with the shortfall when the balance and credit line do not cover it). Card: the
    answer is `processing` (or `failed` for a declined card); the provider's signed webhook confirms it later."""

    async def action() -> PaymentPublic:
        if body.method == "balance":
            payment_id = await handlers.pay_with_balance(conn, user.merchant_id, checkout_id, body.amount)
        else:
            payment_id = await handlers.pay_with_card(
                conn, user.merchant_id, checkout_id, body.payment_method, body.amount, request.app.state.payments
            )
        return _payment_public((await conn.execute(select(payments).where(payments.c.id == payment_id))).one())

    async with engine.begin() as conn:
        return await once.run(conn, idempotency_keys, f"{user.merchant_id}:pay:{checkout_id}", action)


@router.get("/balance", tags=["balance"], summary="The merchant's balance")
async def get_balance(
    user: Merchant, engine: Engine, currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "USD"
) -> BalancePublic:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(wallets).where(wallets.c.merchant_id == user.merchant_id, wallets.c.currency == currency)
            )
        ).first()
    return _balance(row.balance if row else Decimal(0), row.credit_limit if row else Decimal(0), currency)


def _balance(balance: Decimal, credit_limit: Decimal, currency: str) -> BalancePublic:
    return BalancePublic(
        balance=Money.of(balance, currency),
        credit_limit=Money.of(credit_limit, currency),
        available=Money.of(balance + credit_limit, currency),
    )


@router.post(
    "/balance/top-ups",
    status_code=201,
    tags=["balance"],
    summary="Credit a merchant's balance with money received (ops)",
)
async def top_up(body: TopUpCreate, _: Ops, engine: Engine, once: Idempotent) -> Response:
    async def action() -> BalancePublic:
        await handlers.top_up(conn, body.merchant_id, body.amount, body.reference)
        row = (
            await conn.execute(
                select(wallets).where(
                    wallets.c.merchant_id == body.merchant_id, wallets.c.currency == body.amount.currency
                )
            )
        ).one()
        return _balance(row.balance, row.credit_limit, row.currency)

    async with engine.begin() as conn:
        return await once.run(conn, idempotency_keys, "ops:top-up", action, status_code=201)


@router.put(
    "/balance/credit-lines/{merchant_id}",
    tags=["balance"],
    summary="Grant or change a merchant's credit line (ops): how far below zero the balance may go",
)
async def set_credit_line(merchant_id: str, body: CreditLineSet, _: Ops, engine: Engine) -> BalancePublic:
    async with engine.begin() as conn:
        await handlers.set_credit_limit(conn, merchant_id, body.limit)
        row = (
            await conn.execute(
                select(wallets).where(wallets.c.merchant_id == merchant_id, wallets.c.currency == body.limit.currency)
            )
        ).one()
    return _balance(row.balance, row.credit_limit, row.currency)


@router.get("/balance/entries", tags=["balance"], summary="The merchant's balance history, newest first")
async def balance_entries(user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> LedgerPage:
    le = ledger_entries
    query = select(le).where(le.c.account == wallet_account(user.merchant_id)).order_by(le.c.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(le.c.id < decode_cursor(cursor, int)[0])
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return LedgerPage(
        items=[
            LedgerEntryPublic(
                id=r.id,
                transaction_id=str(r.transaction_id),
                amount=Money.of(r.amount, r.currency),
                kind=r.kind,
                reference=r.reference,
                created_at=r.created_at,
            )
            for r in rows[:limit]
        ],
        next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None,
    )

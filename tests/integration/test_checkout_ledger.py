"""The ledger's invariant under random top-ups, charges, refunds and credit lines, against the real database:
a wallet's balance is the sum of its entries and never below minus its credit line; every transaction sums to
zero."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.checkout import handlers
from services.checkout.adapters.tables import ledger_entries, wallets
from services.checkout.domain import ledger
from shared.db import make_engine
from shared.errors import Conflict
from shared.money import Money
from tests.conftest import settings_for

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
operations = st.lists(
    st.tuples(st.sampled_from(["top_up", "charge", "refund", "credit", "overdraft"]), amounts), max_size=25
)


async def _run(url_env: dict[str, str], ops: list[tuple[str, Decimal]]) -> None:
    engine = make_engine(settings_for("checkout", url_env, db_pool_size=2))
    merchant = f"prop-{uuid.uuid4().hex[:10]}"
    wallet = ledger.wallet_account(merchant)
    charged = Decimal(0)
    try:
        for kind, amount in ops:
            try:
                async with engine.begin() as conn:
                    if kind == "top_up":
                        await handlers.top_up(conn, merchant, Money.of(amount, "USD"), "prop")
                    elif kind == "credit":
                        await handlers.set_credit_limit(conn, merchant, Money.of(amount, "USD"))
                    elif kind == "refund" and amount <= charged:
                        transfer = ledger.transfer(ledger.ORDER_PAYMENTS, wallet, amount)
                        await handlers.post(conn, merchant, "USD", "refund", "prop", transfer)
                        charged -= amount
                    elif kind in ("charge", "overdraft"):
                        row = (
                            await conn.execute(
                                select(wallets).where(wallets.c.merchant_id == merchant).with_for_update()
                            )
                        ).first()
                        if kind == "charge":  # the pay path's check; "overdraft" skips it and meets the CHECK
                            balance, credit = (row.balance, row.credit_limit) if row else (Decimal(0), Decimal(0))
                            ledger.check_can_spend(balance, credit, amount, "USD")
                        await handlers.post(
                            conn,
                            merchant,
                            "USD",
                            "charge",
                            "prop",
                            ledger.transfer(wallet, ledger.ORDER_PAYMENTS, amount),
                        )
                        charged += amount
            except (ledger.InsufficientBalance, Conflict, IntegrityError):
                pass  # refused: and the transaction rolled back, so nothing of it may remain
        async with engine.connect() as conn:
            row = (await conn.execute(select(wallets).where(wallets.c.merchant_id == merchant))).first()
            total = (
                await conn.execute(
                    select(func.coalesce(func.sum(ledger_entries.c.amount), 0)).where(
                        ledger_entries.c.account == wallet
                    )
                )
            ).scalar_one()
            unbalanced = (
                await conn.execute(
                    select(ledger_entries.c.transaction_id)
                    .where(ledger_entries.c.merchant_id == merchant)
                    .group_by(ledger_entries.c.transaction_id)
                    .having(func.sum(ledger_entries.c.amount) != 0)
                )
            ).all()
        balance, credit = (row.balance, row.credit_limit) if row else (Decimal(0), Decimal(0))
        assert balance == total
        assert balance >= -credit
        assert unbalanced == []
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def env(migrated):
    return migrated


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_the_balance_is_always_the_sum_of_its_entries_and_never_overdrawn(env, ops):
    asyncio.run(_run(env, ops))

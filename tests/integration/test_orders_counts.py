"""Tab counts are kept as insert-only changes folded into counters in the background: reading them gives the
same answer before and after a fold, and concurrent folds neither lose nor double a change."""

import asyncio
import uuid

from sqlalchemy import func, select

from services.orders.adapters import repository
from services.orders.adapters.tables import order_count_changes
from services.orders.domain.order import Status


async def test_counts_read_the_same_before_and_after_folding(engine_for):
    engine = engine_for("orders")
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    moves = [(None, Status.QUOTING)] * 5 + [(Status.QUOTING, Status.TO_ORDER)] * 3 + [(Status.TO_ORDER, Status.PENDING)]
    async with engine.begin() as conn:
        await repository._count_moves(conn, [(merchant, before, after) for before, after in moves])

    async with engine.connect() as conn:
        before_fold = await repository.counts(conn, merchant)
    assert (before_fold[Status.QUOTING], before_fold[Status.TO_ORDER], before_fold[Status.PENDING]) == (2, 2, 1)

    async def fold_all() -> None:
        while True:
            async with engine.begin() as conn:
                if not await repository.fold_count_changes(conn, limit=3):
                    return

    await asyncio.gather(fold_all(), fold_all(), fold_all())  # several instances folding at once
    async with engine.connect() as conn:
        assert await repository.counts(conn, merchant) == before_fold
        left = await conn.scalar(select(func.count()).where(order_count_changes.c.merchant_id == merchant))
    assert left == 0

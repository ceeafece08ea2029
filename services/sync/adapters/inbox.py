"""The webhook hot path's two adapters: stores looked up without a query per delivery, and deliveries written to
the inbox (`webhook_deliveries`) by group commit, so that a burst of webhooks costs a few transactions, not one
each. A group is applied in the transaction that keeps it (write-through): its rows are written once, applied. If
applying it fails, the group is kept unapplied, with its payloads, for the applier loop, which finds what fails.
A delivery is answered only after the transaction that holds it commits: nothing answered 200 is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.sync.adapters.tables import stores, webhook_deliveries
from shared.clock import utcnow
from shared.db import insert_records, unavailable
from shared.logging import get_logger

log = get_logger(__name__)

# How long a store read for a webhook is trusted before it is read again. A removed store's deliveries within that
# time are accepted and then ignored when applied; a new webhook secret is picked up at once (a mismatch reads the
# store again).
STORE_CACHE_SECONDS = 10.0
GROUP_COMMIT_MAX = 1000  # deliveries per inbox transaction

# One prepared statement each for any group size (a VALUES list is compiled and prepared anew for each). They return
# the deliveries inserted: one accepted before, or earlier in the same group, conflicts and is left out.
_COLUMNS = ("store_id", "delivery_key", "topic", "external_order_id")  # every delivery row's, applied or waiting
_INSERT_APPLIED = (
    insert_records(webhook_deliveries, *_COLUMNS, "outcome", "applied_at")
    .on_conflict_do_nothing()
    .returning(webhook_deliveries.c.store_id, webhook_deliveries.c.delivery_key)
)
_INSERT_WAITING = (
    insert_records(webhook_deliveries, *_COLUMNS, "payload")
    .on_conflict_do_nothing()
    .returning(webhook_deliveries.c.store_id, webhook_deliveries.c.delivery_key)
)


class StoreDirectory:
    """Stores by ("shopify", shop domain) or ("woocommerce", store id), read at most once per STORE_CACHE_SECONDS."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._held: dict[tuple[str, str], tuple[float, Row]] = {}  # (when read, the store)
        self._reading: dict[tuple[str, str], asyncio.Task[Row | None]] = {}

    async def find(self, platform: str, key: str, *, fresh: bool = False) -> Row | None:
        cached = self._held.get((platform, key))
        if cached is not None and not fresh:
            if time.monotonic() - cached[0] >= STORE_CACHE_SECONDS and (platform, key) not in self._reading:
                # Read again in the background while the webhooks go on with the row held: made to wait for the
                # read every STORE_CACHE_SECONDS, the webhooks of a busy store piled up behind it, a backlog that
                # took seconds to drain at 1,000 orders/s.
                refresh = self._reading[(platform, key)] = asyncio.create_task(self._read(platform, key))
                refresh.add_done_callback(_log_failed_refresh)
            return cached[1]
        # The webhooks in flight when there is no entry share one read: each reading on its own took a connection
        # apiece, beyond the pool, for the same row.
        reading = self._reading.get((platform, key))
        if reading is None or fresh:
            reading = asyncio.create_task(self._read(platform, key))
            self._reading[(platform, key)] = reading
        return await asyncio.shield(reading)  # a waiter that gives up does not cancel the others' read

    async def _read(self, platform: str, key: str) -> Row | None:
        try:
            where = stores.c.shop_domain == key if platform == "shopify" else stores.c.id == key
            async with self._engine.connect() as conn:
                row = (await conn.execute(select(stores).where(stores.c.platform == platform, where))).first()
        finally:
            if self._reading.get((platform, key)) is asyncio.current_task():
                del self._reading[(platform, key)]
        if row is not None:  # unknown keys are not kept: anyone may send them
            self._held[(platform, key)] = (time.monotonic(), row)
        else:  # gone (a removed store's shop domain is freed): its next webhook is refused
            self._held.pop((platform, key), None)
        return row

    def forget(self, store_id: str, shop_domain: str) -> None:
        """This instance changed the store: its next webhook reads it again."""
        self._held.pop(("shopify", shop_domain), None)
        self._held.pop(("woocommerce", store_id), None)


def _log_failed_refresh(refresh: asyncio.Task) -> None:
    if not refresh.cancelled() and refresh.exception() is not None:  # the row held serves until a read succeeds
        log.warning("webhooks.store_refresh_failed", error=repr(refresh.exception()))


@dataclass(frozen=True)
class Delivery:
    store_id: str
    delivery_key: str
    topic: str
    external_order_id: str
    change: Any  # what the store says happened, read from the payload
    correlation_id: str | None  # the request's, carried by the events the delivery leads to


Apply = Callable[[AsyncConnection, list[Delivery]], Awaitable[list[str]]]
"""Applies deliveries in the caller's transaction; returns what each one did."""


class DeliveryInbox:
    """Group commit: deliveries arriving while a transaction is in flight go together in the next one."""

    def __init__(
        self, engine: AsyncEngine, apply: Apply, payload: Callable[[Delivery], dict], on_waiting: Callable[[], None]
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._payload = payload  # what a delivery kept unapplied stores, for the applier to read back
        self._on_waiting = on_waiting
        self._waiting: list[tuple[Delivery, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task | None = None

    async def accept(self, delivery: Delivery) -> bool:
        """True once the delivery is committed; False when this delivery was accepted before (a redelivery)."""
        accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, accepted))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await accepted

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:GROUP_COMMIT_MAX], self._waiting[GROUP_COMMIT_MAX:]
            deliveries = [d for d, _ in group]
            try:
                async with self._engine.begin() as conn:
                    applied = await self._applied(conn, deliveries)
                    if applied is not None:
                        rows, insert = applied, _INSERT_APPLIED
                    else:
                        rows, insert = (
                            [{**_columns(d), "payload": self._payload(d)} for d in deliveries],
                            _INSERT_WAITING,
                        )
                    new = {tuple(row) for row in await conn.execute(insert, {"records": rows})}
            except Exception as exc:  # nothing of the group was kept: each request answers with the error
                for _, accepted in group:
                    if not accepted.done():
                        accepted.set_exception(exc)
                continue
            for delivery, accepted in group:
                key = (delivery.store_id, delivery.delivery_key)
                if not accepted.done():
                    accepted.set_result(key in new)
                new.discard(key)  # the same delivery twice in one group: the second is the redelivery
            if applied is None:
                self._on_waiting()

    async def _applied(self, conn: AsyncConnection, deliveries: list[Delivery]) -> list[dict] | None:
        """The group's rows, applied; None when applying failed (and was rolled back). A redelivery in the group is
        applied too, to no effect (a version not newer changes nothing), rather than asking first which are new."""
        try:
            async with conn.begin_nested():
                outcomes = await self._apply(conn, deliveries)
        except Exception as exc:
            if unavailable(exc):
                raise
            log.warning("webhooks.group_left_for_the_applier", deliveries=len(deliveries), error=repr(exc))
            return None
        now = utcnow()
        return [
            {**_columns(d), "outcome": outcome, "applied_at": now}
            for d, outcome in zip(deliveries, outcomes, strict=True)
        ]


def _columns(d: Delivery) -> dict:
    return {name: getattr(d, name) for name in _COLUMNS}

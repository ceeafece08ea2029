"""Transactional outbox: events are written in the transaction that changes the state, and a relay publishes
them to Kafka afterwards. A crash anywhere leaves the row in place, so the event is published at least once;
consumers drop the duplicates by `event_id`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import BigInteger, Table, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import insert_records
from shared.events import IntegrationEvent
from shared.logging import get_logger

log = get_logger(__name__)


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def notify_trigger_ddl(schema: str) -> list[str]:
    """A statement-level trigger that wakes the relay the moment a transaction adds events."""
    channel = notify_channel(schema)
    return [
        f"""CREATE OR REPLACE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$""",
        f"""CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify()""",
    ]


async def add_events(conn: AsyncConnection, outbox: Table, *events: IntegrationEvent) -> None:
    """Queue events for publishing, inside the caller's transaction."""
    if not events:
        return
    rows = [
        {
            "event_id": e.event_id,
            "topic": e.topic,
            "key": e.order_id,
            "value": e.model_dump_json(),
            "correlation_id": e.correlation_id,
        }
        for e in events
    ]
    await conn.execute(insert_records(outbox, *rows[0]), {"records": rows})


class OutboxRelay:
    """Publishes outbox rows in id order with an idempotent producer, then deletes them.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so several instances of a service share the work. The relay
    sleeps only when the table is empty, and a NOTIFY from the insert trigger wakes it at once.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        producer: AIOKafkaProducer,
        *,
        dsn: str,
        topic_prefix: str = "",
        batch_size: int = 500,
        idle_poll_seconds: float = 1.0,
        linger_seconds: float = 0.0,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._producer = producer
        self._dsn = dsn
        self._prefix = topic_prefix
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds
        self._linger = linger_seconds
        self._wakeup = asyncio.Event()
        o = outbox  # the statements, built once: SQLAlchemy computes a new statement object's cache key each time
        self._claim = (
            select(o.c.id, o.c.topic, o.c.key, o.c.value, o.c.correlation_id, o.c.attempts)
            .where(o.c.available_at <= func.now())
            .order_by(o.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        # = ANY(array), not IN (...): one prepared statement whatever the number of rows
        self._delete = delete(o).where(o.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))

    async def run(self) -> None:
        """Lead, then publish until the leading connection is lost; then try to lead again.

        One relay per service publishes at a time (a PostgreSQL advisory lock held by its LISTEN connection),
        so events leave in outbox order and one order's events keep their order even with several instances.
        The others wait on the lock and take over within moments when the leader dies.
        """
        while True:
            try:
                async with _leadership(
                    self._dsn, notify_channel(self._outbox.schema or "public"), self._wakeup
                ) as lost:
                    publishing = asyncio.create_task(self._publish_loop())
                    try:
                        await asyncio.wait(
                            {publishing, asyncio.create_task(lost.wait())}, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        publishing.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await publishing
                log.warning("outbox.leadership_lost")
            except (OSError, asyncpg.PostgresError) as exc:
                log.info("outbox.leadership_retry", error=str(exc))
            await asyncio.sleep(0.5)

    async def _publish_loop(self) -> None:
        self._wakeup.set()  # rows may have arrived before we led
        backoff = 0.1
        while True:
            # Cleared before the batch: a NOTIFY that arrives while it is being sent must not be lost.
            self._wakeup.clear()
            try:
                published = await self.publish_batch()
                backoff = 0.1
            except Exception as exc:  # database or broker down: keep trying, never give up on an event
                log.warning("outbox.relay_error", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_poll)
                await asyncio.sleep(self._linger)  # the rows of transactions committing just after join this batch

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were claimed."""
        o = self._outbox
        async with self._engine.begin() as conn:
            rows = (await conn.execute(self._claim)).all()
            if not rows:
                return 0
            sends = [await self._send(row) for row in rows]
            results = await asyncio.gather(*sends, return_exceptions=True)
            done = [row.id for row, r in zip(rows, results, strict=True) if not isinstance(r, BaseException)]
            if done:
                await conn.execute(self._delete, {"ids": done})
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, BaseException):
                    delay = timedelta(seconds=min(0.2 * 2**row.attempts, 60))
                    await conn.execute(
                        update(o)
                        .where(o.c.id == row.id)
                        .values(
                            attempts=o.c.attempts + 1,
                            last_error=repr(result)[:2000],
                            available_at=func.now() + delay,
                        )
                    )
                    log.warning("outbox.publish_failed", outbox_id=row.id, error=repr(result))
            return len(rows)

    async def _send(self, row) -> asyncio.Future:
        """Queue one row; a row the producer refuses at once (too large, unknown topic) fails alone."""
        try:
            return await self._producer.send(
                self._prefix + row.topic,
                value=row.value.encode(),
                key=row.key.encode(),
                headers=[("correlation_id", (row.correlation_id or "").encode())],
            )
        except Exception as exc:
            failed: asyncio.Future = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed


@contextlib.asynccontextmanager
async def _leadership(dsn: str, channel: str, wakeup: asyncio.Event) -> AsyncIterator[asyncio.Event]:
    """Holds the relay lock of this outbox and LISTENs on its channel; the event yielded is set when the
    connection (and with it the lock) is lost."""
    conn = await asyncpg.connect(dsn)
    try:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"{channel}:relay")  # waits while another leads
        await conn.add_listener(channel, lambda *_: wakeup.set())
        log.info("outbox.leading", channel=channel)
        yield lost
    finally:
        if not conn.is_closed():
            await conn.close(timeout=2)

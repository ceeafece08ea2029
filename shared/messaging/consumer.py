"""Idempotent event consumers.

Auto-commit is off. Each message is handled in one database transaction that also records its `event_id`, so a
redelivered event has no second effect; the Kafka offset is committed only after that transaction. A message
that keeps failing is sent to the group's dead-letter topic with the error after `max_attempts` tries, so it
cannot block its partition. Infrastructure failures (database or broker unreachable) are not the message's
fault: they are retried without limit and never dead-lettered.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError
from sqlalchemy import Table, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import insert_records, prune, unavailable
from shared.events import IntegrationEvent, parse_event
from shared.logging import bind_correlation_id, get_logger

log = get_logger(__name__)
_EVENT_TYPE = re.compile(rb'"event_type":\s*"(\w+)"')

EventHandler = Callable[[AsyncConnection, IntegrationEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncConnection, list[IntegrationEvent]], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class Batch:
    """A handler given consecutive events in one call, so that it can apply them with one statement per table
    instead of several per event. Registered for several event types (the same object), it gets their mixed runs
    in partition order; it binds each event's correlation id itself where it matters. On the slow path (retries,
    dead-lettering) it gets them one by one."""

    handle: BatchHandler

    async def __call__(self, conn: AsyncConnection, event: IntegrationEvent) -> None:
        await self.handle(conn, [event])


class _HandlerFailed(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(f"handler failed at position {position}")
        self.position = position


class EventConsumer:
    BATCH = 200  # messages per transaction on the fast path
    COMMIT_INTERVAL = 0.25  # seconds between offset commits while messages keep coming
    IDLE_COMMIT_MS = 200  # with no message for this long, the offsets handled are committed

    def __init__(
        self,
        *,
        name: str,
        engine: AsyncEngine,
        handled_events: Table,
        handlers: Mapping[str, EventHandler | Batch],
        producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer,
        dead_letter_topic: str,
        max_attempts: int = 5,
        linger_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self._engine = engine
        self._handled = handled_events
        self._handlers = handlers
        self._producer = producer
        self._consumer = consumer
        self._dead_letter_topic = dead_letter_topic
        self._max_attempts = max_attempts
        self._linger = linger_seconds
        # The batch's event ids in one statement; those already there come back missing: redeliveries.
        self._record_handled = (
            insert_records(handled_events, "consumer", "event_id")
            .on_conflict_do_nothing()
            .returning(handled_events.c.event_id)
        )

    async def run(self) -> None:
        uncommitted: dict[TopicPartition, int] = {}
        last_commit = time.monotonic()
        while True:
            batch = await self._consumer.getmany(timeout_ms=self.IDLE_COMMIT_MS, max_records=1000)
            if not batch:
                if uncommitted:  # quiet: the position is stored at once
                    await self._commit(uncommitted)
                    uncommitted, last_commit = {}, time.monotonic()
                continue
            if self._linger and sum(map(len, batch.values())) < self.BATCH:
                # A trickle: let more arrive, so that a transaction applies several events rather than one.
                await asyncio.sleep(self._linger)
                for tp, later in (await self._consumer.getmany(timeout_ms=0, max_records=1000)).items():
                    batch.setdefault(tp, []).extend(later)
            # The partitions' messages one after the other, each partition's in order, in as few transactions as
            # they fit (one per partition cost more than their events under load).
            await self._handle_messages([message for messages in batch.values() for message in messages])
            uncommitted |= {tp: msgs[-1].offset + 1 for tp, msgs in batch.items()}
            # One offset commit for all the partitions, at most every COMMIT_INTERVAL under load: each is a write to
            # the broker's offsets log, and a round's events are often fewer than that costs. Committing later
            # loses nothing: what is read again after a crash or a rebalance is deduplicated or skipped again.
            if time.monotonic() - last_commit >= self.COMMIT_INTERVAL:
                await self._commit(uncommitted)
                uncommitted, last_commit = {}, time.monotonic()

    async def _handle_messages(self, messages: list[ConsumerRecord]) -> None:
        position = 0
        while position < len(messages):
            applied, next_needs_care = await self._apply_batch(messages[position : position + self.BATCH])
            position += applied
            if next_needs_care:  # malformed, failing, or the database is away: alone, with retries
                await self.handle(messages[position])
                position += 1

    async def _apply_batch(self, messages: list[ConsumerRecord]) -> tuple[int, bool]:
        """The fast path: consecutive messages in one transaction, deduplicated with one statement. Returns how many
        were applied and whether the message after them needs the slow path."""
        events: list[IntegrationEvent | None] = []  # None: a type this service does not handle, not parsed
        for message in messages:
            if not self._may_handle(message.value):
                events.append(None)
                continue
            try:
                events.append(parse_event(message.value))
            except ValidationError:
                break
        limit = len(events)
        while limit:
            if all(e is None or e.event_type not in self._handlers for e in events[:limit]):
                return limit, limit < len(messages)  # nothing for us: no transaction at all
            try:
                async with self._engine.begin() as conn:
                    await self._apply_all(conn, events[:limit])
                return limit, limit < len(messages)
            except _HandlerFailed as failed:
                limit = failed.position  # apply what came before it; it goes the slow way
            except Exception as exc:  # the transaction itself failed: nothing of it happened
                log.warning("consumer.batch_failed", consumer=self.name, error=repr(exc))
                return 0, True
        return 0, True

    def _may_handle(self, value: bytes | None) -> bool:
        """False for an event whose type, read from its first bytes, has no handler here: a topic carries every
        event of its producer, and most are another service's business. Unreadable: True, parsing decides."""
        found = _EVENT_TYPE.search(value or b"", 0, 200)
        return found is None or found.group(1).decode() in self._handlers

    async def _apply_all(self, conn: AsyncConnection, events: list[IntegrationEvent | None]) -> None:
        wanted = [e for e in events if e is not None and e.event_type in self._handlers]
        if not wanted:
            return
        fresh = set(
            (
                await conn.execute(
                    self._record_handled,
                    {"records": [{"consumer": self.name, "event_id": e.event_id} for e in wanted]},
                )
            ).scalars()
        )
        run: list[IntegrationEvent] = []  # consecutive events for one Batch handler (it may take several types)
        for event in wanted:
            if event.event_id not in fresh:
                continue  # handled before: a redelivery
            fresh.discard(event.event_id)  # the same event twice in one batch has one effect too
            handler = self._handlers[event.event_type]
            if run and handler is not self._handlers[run[0].event_type]:
                await self._call(conn, events, run)
                run = []
            if isinstance(handler, Batch):
                run.append(event)
            else:
                await self._call(conn, events, [event])
        if run:
            await self._call(conn, events, run)

    async def _call(
        self, conn: AsyncConnection, events: list[IntegrationEvent | None], run: list[IntegrationEvent]
    ) -> None:
        handler = self._handlers[run[0].event_type]
        bind_correlation_id(run[0].correlation_id)
        try:
            await (handler.handle(conn, run) if isinstance(handler, Batch) else handler(conn, run[0]))
        except Exception as exc:  # the first of the run goes the slow way, alone
            raise _HandlerFailed(events.index(run[0])) from exc

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:  # a rebalance took a partition: the next owner re-reads, handlers dedupe
            log.warning("consumer.commit_failed", consumer=self.name, partitions=len(offsets), error=str(exc))

    async def handle(self, message: ConsumerRecord) -> None:
        try:
            event = parse_event(message.value)
        except ValidationError as exc:
            await self._dead_letter(message, f"malformed event: {exc}", attempts=1)
            return
        handler = self._handlers.get(event.event_type)
        if handler is None:
            return  # not an event this service needs
        bind_correlation_id(event.correlation_id)
        attempts, delay = 0, 0.05
        while True:
            try:
                await self._apply(handler, event)
                return
            except Exception as exc:
                if not unavailable(exc):
                    attempts += 1
                    if attempts >= self._max_attempts:
                        log.error(
                            "consumer.gave_up",
                            consumer=self.name,
                            event_id=str(event.event_id),
                            event_type=event.event_type,
                            error=repr(exc),
                        )
                        await self._dead_letter(message, repr(exc), attempts)
                        return
                log.warning(
                    "consumer.retry",
                    consumer=self.name,
                    event_id=str(event.event_id),
                    error=repr(exc),
                    transient=unavailable(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _apply(self, handler: EventHandler, event: IntegrationEvent) -> None:
        async with self._engine.begin() as conn:
            await self._apply_in(conn, handler, event)

    async def _apply_in(self, conn: AsyncConnection, handler: EventHandler, event: IntegrationEvent) -> None:
        """Record the event id and run the handler in the same transaction: a redelivery has no second effect."""
        first_time = (
            await conn.execute(
                pg_insert(self._handled)
                .values(consumer=self.name, event_id=event.event_id)
                .on_conflict_do_nothing()
                .returning(self._handled.c.event_id)
            )
        ).first()
        if first_time is None:
            log.info("consumer.duplicate_skipped", consumer=self.name, event_id=str(event.event_id))
            return
        await handler(conn, event)

    async def _dead_letter(self, message: ConsumerRecord, error: str, attempts: int) -> None:
        headers = [
            *(message.headers or ()),
            ("error", error[:4000].encode()),
            ("attempts", str(attempts).encode()),
            ("original_topic", message.topic.encode()),
            ("original_partition", str(message.partition).encode()),
            ("original_offset", str(message.offset).encode()),
            ("consumer", self.name.encode()),
        ]
        delay = 0.1
        while True:  # losing the message is not an option: retry until the broker takes it
            try:
                await self._producer.send_and_wait(
                    self._dead_letter_topic, value=message.value, key=message.key, headers=headers
                )
                log.error(
                    "consumer.dead_lettered",
                    consumer=self.name,
                    topic=message.topic,
                    offset=message.offset,
                    error=error[:500],
                )
                return
            except Exception as exc:
                log.warning("consumer.dead_letter_retry", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


async def prune_handled_events(engine: AsyncEngine, handled_events: Table, keep: timedelta, batch: int = 10_000) -> int:
    """Forget the event ids handled longer ago than `keep`; returns how many. `keep` must outlast the topics'
    retention: an event can only come again while its topic still holds it."""
    return await prune(engine, handled_events, handled_events.c.handled_at < func.now() - keep, batch=batch)

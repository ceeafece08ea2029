"""The one shape every service has: a FastAPI app whose lifespan runs the outbox relay and the event consumer
beside the HTTP routes, over the service's own schema."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topics
from shared.auth import TokenVerifier
from shared.db import make_engine
from shared.http import ServiceApp, install_error_handlers, install_health
from shared.logging import configure_logging, get_logger
from shared.messaging.consumer import Batch, EventConsumer, EventHandler, prune_handled_events
from shared.messaging.kafka import ensure_topics, make_consumer, make_producer
from shared.messaging.outbox import OutboxRelay
from shared.settings import ServiceSettings

log = get_logger(__name__)
T = TypeVar("T")
GC_THRESHOLDS = (50_000, 20, 20)


@dataclass
class ServiceDefinition:
    settings: ServiceSettings
    metadata: MetaData
    routers: list[APIRouter]
    description: str
    handlers: Mapping[str, EventHandler | Batch] = field(default_factory=dict)
    consumes: tuple[str, ...] = ()
    on_start: Callable[[FastAPI], Awaitable[None]] | None = None
    # Long-running loops beside the relay and the consumer (polling, senders); each gets the app.
    background: tuple[Callable[[FastAPI], Coroutine[Any, Any, None]], ...] = ()

    def table(self, name: str) -> Table:
        return self.metadata.tables[f"{self.settings.db_schema}.{name}"]


def create_app(service: ServiceDefinition) -> FastAPI:
    settings = service.settings
    configure_logging(settings.service_name, settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        dead_letter = settings.topic(topics.dead_letter(settings.service_name))
        await _until_reachable(
            "kafka topics", lambda: ensure_topics(settings, [*(settings.topic(t) for t in topics.ALL), dead_letter])
        )
        producer = await _until_reachable("kafka producer", lambda: _started(make_producer(settings)))
        app.state.producer = producer
        tasks = [
            asyncio.create_task(
                OutboxRelay(
                    engine,
                    service.table("outbox"),
                    producer,
                    dsn=settings.asyncpg_dsn,
                    topic_prefix=settings.topic_prefix,
                    batch_size=settings.outbox_batch_size,
                    linger_seconds=settings.batch_linger_ms / 1000,
                ).run(),
                name="outbox-relay",
            )
        ]
        consumer = None
        if service.handlers:
            consumer = await _until_reachable(
                "kafka consumer", lambda: _started(make_consumer(settings, *service.consumes))
            )
            tasks.append(
                asyncio.create_task(
                    EventConsumer(
                        name=settings.service_name,
                        engine=engine,
                        handled_events=service.table("handled_events"),
                        handlers=service.handlers,
                        producer=producer,
                        consumer=consumer,
                        dead_letter_topic=dead_letter,
                        max_attempts=settings.consumer_max_attempts,
                        linger_seconds=settings.batch_linger_ms / 1000,
                    ).run(),
                    name="event-consumer",
                )
            )
            tasks.append(
                asyncio.create_task(
                    every_hour(
                        "consumer.handled_events_pruned",
                        partial(
                            prune_handled_events,
                            engine,
                            service.table("handled_events"),
                            timedelta(days=settings.handled_events_retention_days),
                        ),
                    ),
                    name="prune-handled-events",
                )
            )
        if service.on_start:
            await service.on_start(app)
        tasks += [asyncio.create_task(loop(app), name=loop.__name__) for loop in service.background]
        for task in tasks:
            task.add_done_callback(_crash_on_unexpected_exit)
        # What start-up built lives as long as the process: keep it out of the collector's way, and collect the
        # young generation less often, so that a burst of requests does not pay for repeated full scans.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("service.started", port=settings.port)
        try:
            yield
        finally:
            for task in tasks:
                task.remove_done_callback(_crash_on_unexpected_exit)
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if consumer is not None:
                await consumer.stop()
            await producer.stop()
            await engine.dispose()

    app = ServiceApp(
        max_body_bytes=settings.max_body_bytes,
        title=f"{settings.service_name} service",
        description=service.description,
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    app.state.definition = service
    install_error_handlers(app)

    async def ready() -> dict[str, bool]:
        return {"database": await _database_ok(app.state.engine), "kafka": await _kafka_ok(app)}

    install_health(app, ready)
    for router in service.routers:
        app.include_router(router)
    return app


async def _until_reachable(what: str, attempt: Callable[[], Awaitable[T]], patience_seconds: float = 120) -> T:
    """A service (re)started while the broker restarts waits for it rather than exiting at once."""
    deadline, delay = asyncio.get_running_loop().time() + patience_seconds, 0.25
    while True:
        try:
            return await attempt()
        except (KafkaError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("service.waiting_for", what=what, error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def every_hour(event: str, prune: Callable[[], Awaitable[int]]) -> None:
    """Prune now and every hour after, logging `event` with the number of rows gone: a table that gains a row per
    event or webhook would otherwise grow for ever. (Instances may prune at once: they delete the same rows.)"""
    while True:
        try:
            if pruned := await prune():
                log.info(event, rows=pruned)
        except Exception as exc:  # the database away: the next hour tries again
            log.warning("service.prune_failed", what=event, error=repr(exc))
        await asyncio.sleep(3600)


async def _started(client: AIOKafkaProducer | AIOKafkaConsumer) -> AIOKafkaProducer | AIOKafkaConsumer:
    try:
        await client.start()
    except BaseException:
        await client.stop()
        raise
    return client


def _crash_on_unexpected_exit(task: asyncio.Task) -> None:
    """A relay or consumer must never stop while the service serves: let the supervisor restart the process."""
    if task.cancelled():
        return
    log.critical("service.background_task_died", task=task.get_name(), error=repr(task.exception()))
    os.kill(os.getpid(), signal.SIGTERM)


async def _database_ok(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(2):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def _kafka_ok(app: FastAPI) -> bool:
    try:
        async with asyncio.timeout(2):
            await app.state.producer.client.fetch_all_metadata()
        return True
    except Exception:
        return False

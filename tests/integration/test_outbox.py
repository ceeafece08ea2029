"""The outbox relay on the real database and broker: nothing committed is lost, whatever stops when."""

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from services.orders.adapters.tables import outbox
from shared import topics
from shared.events import OrderStatusChanged, OrderStatusChangedPayload, parse_event
from shared.messaging.kafka import ensure_topics, make_producer
from shared.messaging.outbox import OutboxRelay, add_events
from tests.conftest import settings_for
from tests.kafka import new_topic_prefix, read_topic


class ProcessDied(BaseException):
    """Stands for a SIGKILL: nothing in the relay catches it."""


def status_event(order_id: str) -> OrderStatusChanged:
    return OrderStatusChanged(
        merchant_id="m-outbox",
        order_id=order_id,
        payload=OrderStatusChangedPayload(from_status=None, to_status="quoting"),
    )


@pytest.fixture
async def relay_parts(migrated, engine_for):
    settings = settings_for("orders", migrated, topic_prefix=new_topic_prefix("outbox"))
    await ensure_topics(settings, [settings.topic(topics.ORDERS)])
    engine = engine_for("orders")
    producer = make_producer(settings)
    await producer.start()
    yield settings, engine, producer
    await producer.stop()


def relay(settings, engine, producer) -> OutboxRelay:
    return OutboxRelay(engine, outbox, producer, dsn=settings.asyncpg_dsn, topic_prefix=settings.topic_prefix)


async def wait_for_empty_outbox(engine, event_ids, timeout=15.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            async with engine.connect() as conn:
                left = await conn.scalar(select(func.count()).where(outbox.c.event_id.in_(event_ids)))
            if left == 0:
                return
            await asyncio.sleep(0.05)


async def test_an_event_committed_while_no_relay_runs_is_delivered_when_one_starts(relay_parts):
    settings, engine, producer = relay_parts
    event = status_event(str(uuid.uuid4()))
    async with engine.begin() as conn:  # the state change commits; the relay is down
        await add_events(conn, outbox, event)

    task = asyncio.create_task(relay(settings, engine, producer).run())
    try:
        await wait_for_empty_outbox(engine, [event.event_id])
    finally:
        task.cancel()
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(topics.ORDERS), until=1)
    delivered = [parse_event(r.value) for r in records if r.key == event.order_id.encode()]
    assert [e.event_id for e in delivered] == [event.event_id]


async def test_a_relay_that_dies_after_publishing_but_before_its_commit_publishes_again(relay_parts, monkeypatch):
    settings, engine, producer = relay_parts
    event = status_event(str(uuid.uuid4()))
    async with engine.begin() as conn:
        await add_events(conn, outbox, event)

    crashing = relay(settings, engine, producer)
    original_send = producer.send

    async def send_then_die(*args, **kwargs):
        future = await original_send(*args, **kwargs)
        await future  # the broker has it
        raise ProcessDied

    monkeypatch.setattr(producer, "send", send_then_die)
    with pytest.raises(ProcessDied):
        await crashing.publish_batch()
    monkeypatch.undo()
    async with engine.connect() as conn:  # its transaction rolled back: the row is still there
        assert await conn.scalar(select(func.count()).where(outbox.c.event_id == event.event_id)) == 1

    assert await relay(settings, engine, producer).publish_batch() >= 1
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(topics.ORDERS), until=2)
    copies = [parse_event(r.value) for r in records if r.key == event.order_id.encode()]
    # at least once: the consumer side drops the second copy by event_id
    assert [e.event_id for e in copies] == [event.event_id, event.event_id]


async def test_events_of_one_order_leave_in_order_and_one_too_large_fails_alone(relay_parts):
    """Many rows of one partition leave in outbox order; a row the producer refuses is kept for a retry and does
    not hold up the others."""
    settings, engine, producer = relay_parts
    order_id = str(uuid.uuid4())
    events = [status_event(order_id) for _ in range(300)]
    async with engine.begin() as conn:
        await add_events(conn, outbox, *events[:150])
        await conn.execute(
            outbox.insert().values(event_id=str(uuid.uuid4()), topic=topics.ORDERS, key=order_id, value="x" * 1100000)
        )
        await add_events(conn, outbox, *events[150:])

    assert await relay(settings, engine, producer).publish_batch() == 301
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(topics.ORDERS), until=300)
    assert [parse_event(r.value).event_id for r in records if r.key == order_id.encode()] == [
        e.event_id for e in events
    ]
    async with engine.connect() as conn:
        (kept,) = (
            await conn.execute(select(outbox.c.attempts, outbox.c.last_error).where(outbox.c.key == order_id))
        ).all()
    assert kept.attempts == 1 and "larger than" in kept.last_error


async def test_the_relay_wakes_on_notify_without_waiting_for_its_poll(relay_parts):
    settings, engine, producer = relay_parts
    slow_poll = OutboxRelay(
        engine, outbox, producer, dsn=settings.asyncpg_dsn, topic_prefix=settings.topic_prefix, idle_poll_seconds=30
    )
    task = asyncio.create_task(slow_poll.run())
    try:
        await asyncio.sleep(0.5)  # the relay is idle, listening
        event = status_event(str(uuid.uuid4()))
        async with engine.begin() as conn:
            await add_events(conn, outbox, event)
        await wait_for_empty_outbox(engine, [event.event_id], timeout=5)
    finally:
        task.cancel()


async def test_one_relay_leads_and_another_takes_over_when_it_dies(relay_parts):
    settings, engine, producer = relay_parts
    first = asyncio.create_task(relay(settings, engine, producer).run())
    await asyncio.sleep(0.5)
    second = asyncio.create_task(relay(settings, engine, producer).run())
    try:
        async with engine.connect() as conn:  # exactly one of them holds the relay lock
            holders = await conn.scalar(
                select(func.count())
                .select_from(text("pg_locks"))
                .where(
                    text(
                        "locktype = 'advisory' AND granted"
                        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
            )
        assert holders == 1
        first.cancel()  # the leader dies; its connection and lock go with it
        event = status_event(str(uuid.uuid4()))
        async with engine.begin() as conn:
            await add_events(conn, outbox, event)
        await wait_for_empty_outbox(engine, [event.event_id], timeout=10)
    finally:
        first.cancel()
        second.cancel()

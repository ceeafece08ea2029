"""Idempotent consumers on the real broker and database: duplicates have one effect, poison goes aside."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from services.orders.adapters.tables import handled_events, order_timeline, orders, outbox
from services.orders.consumers import HANDLERS
from shared import topics
from shared.events import (
    Address,
    OrderPaid,
    OrderPaidPayload,
    OrderSynced,
    OrderSyncedPayload,
    PayableOrderPayload,
    StoreOrder,
    StoreOrderLine,
    parse_event,
)
from shared.messaging.consumer import Batch, EventConsumer, prune_handled_events
from shared.messaging.kafka import ensure_topics, make_consumer, make_producer
from shared.messaging.outbox import add_events
from shared.money import Money
from tests.conftest import settings_for
from tests.kafka import new_topic_prefix, produce, read_topic


def synced(order_id: str, external_id: str) -> OrderSynced:
    now = datetime.now(UTC)
    return OrderSynced(
        merchant_id="m-consumer",
        order_id=order_id,
        payload=OrderSyncedPayload(
            order=StoreOrder(
                store_id="s-consumer",
                platform="shopify",
                external_order_id=external_id,
                order_name="#1",
                currency="USD",
                total_price=Money.of("10", "USD"),
                financial_status="paid",
                shipping_address=Address(country_code="US"),
                store_created_at=now,
                store_updated_at=now,
                lines=[
                    StoreOrderLine(
                        external_line_id="l1",
                        external_product_id="p-unconnected",
                        external_variant_id="v",
                        quantity=1,
                        unit_price=Money.of("10", "USD"),
                    )
                ],
            )
        ),
    )


@pytest.fixture
async def orders_consumer(migrated, engine_for):
    """The orders service's real handlers behind an EventConsumer, on a topic prefix of its own."""
    settings = settings_for("orders", migrated, topic_prefix=new_topic_prefix("cons"), consumer_max_attempts=2)
    dead_letter = settings.topic(topics.dead_letter(settings.service_name))
    await ensure_topics(settings, [settings.topic(topics.STORE_ORDERS), settings.topic(topics.PAYMENTS), dead_letter])
    engine = engine_for("orders")
    producer, consumer = make_producer(settings), make_consumer(settings, topics.STORE_ORDERS, topics.PAYMENTS)
    await producer.start()
    await consumer.start()
    task = asyncio.create_task(
        EventConsumer(
            name=settings.service_name,
            engine=engine,
            handled_events=handled_events,
            handlers=HANDLERS,
            producer=producer,
            consumer=consumer,
            dead_letter_topic=dead_letter,
            max_attempts=2,
        ).run()
    )
    yield settings, engine, dead_letter
    task.cancel()
    await consumer.stop()
    await producer.stop()


async def wait_handled(engine, event_id: uuid.UUID, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            async with engine.connect() as conn:
                if await conn.scalar(select(func.count()).where(handled_events.c.event_id == event_id)):
                    return
            await asyncio.sleep(0.05)


async def test_the_same_event_delivered_twice_has_one_effect(orders_consumer):
    settings, engine, _ = orders_consumer
    event = synced(str(uuid.uuid4()), f"ext-{uuid.uuid4().hex[:8]}")
    message = (event.key(), event.model_dump_json().encode())
    marker = synced(str(uuid.uuid4()), f"ext-{uuid.uuid4().hex[:8]}")  # sent after both copies, same partition
    await produce(settings.kafka_bootstrap_servers, settings.topic(topics.STORE_ORDERS), message, message)
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.STORE_ORDERS),
        (event.key(), marker.model_dump_json().encode()),
    )
    await wait_handled(engine, marker.event_id)

    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(orders.c.id == event.order_id)) == 1
        created = await conn.scalar(
            select(func.count()).where(order_timeline.c.order_id == event.order_id, order_timeline.c.kind == "created")
        )
        published = await conn.scalar(select(func.count()).where(outbox.c.key == event.order_id))
    assert created == 1
    assert published == 1  # one OrderStatusChanged (no relay runs here, so it waits in the outbox)


async def test_poison_messages_go_to_the_dead_letter_topic_and_later_messages_flow(orders_consumer):
    settings, engine, dead_letter = orders_consumer
    order_id = str(uuid.uuid4())
    key = order_id.encode()
    # An event that fails every time: payment for an order this service never heard of.
    failing = OrderPaid(
        merchant_id="m-consumer",
        order_id=str(uuid.uuid4()),
        payload=OrderPaidPayload(
            payment_id="p1",
            method="balance",
            amount=Money.of("1", "USD"),
            order=PayableOrderPayload(
                store_id="s", order_name="#x", currency="USD", lines=[], shipping_address=Address()
            ),
        ),
    )
    later = synced(order_id, f"ext-{uuid.uuid4().hex[:8]}")
    await produce(settings.kafka_bootstrap_servers, settings.topic(topics.STORE_ORDERS), (key, b"{not an event"))
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.PAYMENTS),
        (failing.key(), failing.model_dump_json().encode()),
    )
    await produce(
        settings.kafka_bootstrap_servers, settings.topic(topics.STORE_ORDERS), (key, later.model_dump_json().encode())
    )

    await wait_handled(engine, later.event_id)  # the malformed message before it did not block the partition
    parked = await read_topic(settings.kafka_bootstrap_servers, dead_letter, until=2)
    by_topic = {dict(r.headers)["original_topic"].decode(): dict(r.headers) for r in parked}
    assert set(by_topic) == {settings.topic(topics.STORE_ORDERS), settings.topic(topics.PAYMENTS)}
    assert b"malformed event" in by_topic[settings.topic(topics.STORE_ORDERS)]["error"]
    assert b"NotFound" in by_topic[settings.topic(topics.PAYMENTS)]["error"]
    assert by_topic[settings.topic(topics.PAYMENTS)]["attempts"] == b"2"
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(handled_events.c.event_id == failing.event_id)) == 0


async def test_a_batch_handler_gets_runs_and_a_failing_event_in_a_run_goes_aside_alone(migrated, engine_for):
    settings = settings_for("orders", migrated, topic_prefix=new_topic_prefix("batch"), consumer_max_attempts=2)
    topic, dead_letter = settings.topic(topics.STORE_ORDERS), settings.topic(topics.dead_letter("orders"))
    await ensure_topics(settings, [topic, dead_letter])
    engine, key = engine_for("orders"), str(uuid.uuid4())
    events = [synced(key, f"ext-{i}") for i in range(6)]
    poison = events[2].event_id
    calls: list[int] = []

    async def record(conn, run: list[OrderSynced]) -> None:
        calls.append(len(run))
        if any(e.event_id == poison for e in run):
            raise RuntimeError("cannot apply this one")
        marks = [
            OrderSynced(merchant_id="m", order_id=f"{key}:{e.payload.order.external_order_id}", payload=e.payload)
            for e in run
        ]
        await add_events(conn, outbox, *marks)

    producer, consumer = make_producer(settings), make_consumer(settings, topics.STORE_ORDERS)
    await producer.start()
    await consumer.start()
    await produce(
        settings.kafka_bootstrap_servers, topic, *((key.encode(), e.model_dump_json().encode()) for e in events)
    )
    task = asyncio.create_task(
        EventConsumer(
            name=settings.service_name,
            engine=engine,
            handled_events=handled_events,
            handlers={"OrderSynced": Batch(record)},
            producer=producer,
            consumer=consumer,
            dead_letter_topic=dead_letter,
            max_attempts=2,
        ).run()
    )
    try:
        await wait_handled(engine, events[-1].event_id)
    finally:
        task.cancel()
        await consumer.stop()
        await producer.stop()
    async with engine.begin() as conn:  # the marks leave the outbox: no relay of another test may see them
        applied = (
            (await conn.execute(delete(outbox).where(outbox.c.key.like(f"{key}:%")).returning(outbox.c.key)))
            .scalars()
            .all()
        )
    assert sorted(applied) == [f"{key}:ext-{i}" for i in (0, 1, 3, 4, 5)]  # each once, the poison not at all
    assert max(calls) > 1 and 1 in calls, calls  # runs, and the poison alone on the slow path
    parked = await read_topic(settings.kafka_bootstrap_servers, dead_letter, until=1)
    assert [parse_event(r.value).event_id for r in parked] == [poison]


async def test_handled_event_ids_older_than_the_retention_are_pruned(migrated, engine_for):
    """The dedupe records would grow by a row per event for ever; those older than the retention go, batch by
    batch, and the recent ones stay."""
    engine = engine_for("orders")
    consumer = f"prune-{uuid.uuid4().hex[:8]}"
    old, recent = [uuid.uuid4() for _ in range(5)], [uuid.uuid4() for _ in range(2)]
    now = datetime.now(UTC)
    rows = [(e, now - timedelta(days=31)) for e in old] + [(e, now - timedelta(days=29)) for e in recent]
    async with engine.begin() as conn:
        await conn.execute(
            handled_events.insert(), [{"consumer": consumer, "event_id": e, "handled_at": at} for e, at in rows]
        )
    pruned = await prune_handled_events(engine, handled_events, timedelta(days=30), batch=2)
    assert pruned >= 5  # and any old rows other tests of this session left
    async with engine.connect() as conn:
        left = set(await conn.scalars(select(handled_events.c.event_id).where(handled_events.c.consumer == consumer)))
    assert left == set(recent)

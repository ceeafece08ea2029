"""Reading and writing test topics directly."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.messaging.kafka import by_key

# Every topic a test session creates starts with this, so that the session deletes them all at its end.
SESSION_TOPICS = f"t{uuid.uuid4().hex[:8]}."


def new_topic_prefix(kind: str) -> str:
    """A topic prefix of this session, for services or clients that must not see the others' events."""
    return f"{SESSION_TOPICS}{kind}{uuid.uuid4().hex[:6]}."


async def read_topic(bootstrap: str, topic: str, *, until: int, timeout: float = 20) -> list[ConsumerRecord]:
    """Every record of a topic from the beginning, once at least `until` are there (or the timeout passed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                if time.monotonic() > deadline:
                    return []
                await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        while len(records) < until and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
        return records
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, *messages: tuple[bytes | None, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, partitioner=by_key)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()

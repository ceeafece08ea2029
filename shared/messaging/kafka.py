"""Kafka clients configured the one way every service uses them."""

from __future__ import annotations

import asyncio
import random
import zlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)


# How long the broker may hold a fetch that found nothing new. Under load, the 500 ms default showed as stalls: a
# consumer caught up with its partitions sent a fetch that came back only after the full 500 ms, with hundreds of
# events that had arrived meanwhile, and at 1,000 orders/s the backlog took seconds to drain. 100 ms bounds such a
# stall; an idle consumer pays for it with ten empty fetches a second.
FETCH_MAX_WAIT_MS = 100


def by_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """The partition of a key: CRC-32 of it, so one order's events stay in order on one partition. (The client's
    default, the Java client's murmur2, is pure Python here: half the CPU time of queueing a message.) Each topic has
    one producing service, so no other producer needs to agree with it."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - spreading load, not a secret
    return all_partitions[zlib.crc32(key) % len(all_partitions)]


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        enable_idempotence=True,  # acks=all, no duplicates from the producer's own retries
        linger_ms=2,
        request_timeout_ms=15000,
        partitioner=by_key,
    )


def make_consumer(settings: ServiceSettings, *topic_names: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *(settings.topic(t) for t in topic_names),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=1000,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


async def delete_topics(bootstrap_servers: str, prefix: str) -> None:
    """Delete the topics whose names start with `prefix`: those of a finished test or benchmark run. Left behind,
    their partitions cost the broker start-up time and background work on every later run."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def ensure_topics(settings: ServiceSettings, names: list[str]) -> None:
    """Create the topics a service uses if they are missing (partitions from settings; keyed by order id)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    n, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication_factor
                )
                for n in missing
            ]
        )
        for topic, code, *message in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):  # another instance may have created it meanwhile
                raise RuntimeError(f"cannot create topic {topic}: error {code} {message}")
        log.info("kafka.topics_created", topics=missing)
        await _wait_for_leaders(admin, missing)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """New partitions take a moment to get a leader; clients that start before then log errors and retry."""
    async with asyncio.timeout(15):
        while True:
            described = await admin.describe_topics(names)
            if all(
                t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.05)

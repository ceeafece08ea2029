"""Creating and deleting topics on the real broker: a run's topics go at its end, and no one else's."""

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.messaging.kafka import delete_topics, ensure_topics
from tests.conftest import settings_for
from tests.kafka import new_topic_prefix


async def _names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_delete_topics_takes_the_prefix_s_topics_and_leaves_the_others(migrated):
    gone = settings_for("orders", migrated, topic_prefix=new_topic_prefix("gone"))
    kept = settings_for("orders", migrated, topic_prefix=new_topic_prefix("kept"))
    for settings in (gone, kept):
        await ensure_topics(settings, [settings.topic(topics.ORDERS), settings.topic(topics.PAYMENTS)])

    await delete_topics(gone.kafka_bootstrap_servers, gone.topic_prefix)

    deadline = time.monotonic() + 10  # the broker's metadata may lag the controller's deletion a moment
    names = await _names(gone.kafka_bootstrap_servers)
    while any(n.startswith(gone.topic_prefix) for n in names):
        assert time.monotonic() < deadline, "the prefix's topics are still there"
        await asyncio.sleep(0.1)
        names = await _names(gone.kafka_bootstrap_servers)
    assert {kept.topic(topics.ORDERS), kept.topic(topics.PAYMENTS)} <= names

"""The chaos run, short: 80 orders through all four services (two instances each, sharing their consumer groups)
while one instance of every service is SIGKILLed, the Kafka broker and PostgreSQL are restarted, and every
Shopify webhook comes twice and shuffled. Nothing may be lost or doubled (see tools/chaos.py for the checks).

It starts a PostgreSQL and Kafka pair of its own on free ports, so restarting them disturbs no other test."""

from __future__ import annotations

import pytest

from tools import chaos

pytestmark = pytest.mark.e2e


async def test_nothing_is_lost_or_doubled_under_chaos(tmp_path):
    options = chaos.Options(
        orders=80,
        seed=11,
        merchants=2,
        rate=4.0,
        batch=10,
        card_fraction=0.2,
        kill_every=0,  # one kill of each service
        partitions=4,
        timeout=120,
        quiesce_timeout=60,
        log_dir=tmp_path / "logs",
    )
    report = await chaos.run(options)
    print("\n".join(report.lines()))
    assert set(report.kills) == set(chaos.SERVICES)
    assert (report.kafka_restarts, report.postgres_restarts) == (1, 1)
    assert [c.name for c in report.checks if not c.ok] == [], "\n".join(report.lines())
    assert report.ok

"""Fixtures for integration and end-to-end tests: the real PostgreSQL and Kafka of deploy/local/infra.sh, a fresh
database per test session with every service's migrations, and a topic prefix so runs never see each other's
events. Unit tests of pure domain code use none of these."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.messaging.kafka import delete_topics
from shared.migrations import upgrade
from shared.settings import ServiceSettings
from tests.kafka import SESSION_TOPICS, new_topic_prefix

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("sync", "orders", "checkout", "tracking")


@pytest.fixture(scope="session")
def infra() -> ServiceSettings:
    """Starts PostgreSQL and Kafka if they are not running (a no-op when they are), and points the tests at them,
    wherever DROPSHIP_PG_PORT and DROPSHIP_KAFKA_PORT put them (variables already set win)."""
    script = str(ROOT / "deploy/local/infra.sh")
    subprocess.run([script, "start"], check=True, capture_output=True)
    exports = subprocess.run([script, "env"], check=True, capture_output=True, text=True).stdout
    for line in exports.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if value:
            os.environ.setdefault(name, value)
    return ServiceSettings()


def _admin_dsn(settings: ServiceSettings) -> str:
    return settings.asyncpg_dsn


@pytest.fixture(scope="session")
def database_url(infra: ServiceSettings) -> Iterator[str]:
    """A new, empty database for this session, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_admin_dsn(infra))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = infra.database_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def topic_prefix(infra: ServiceSettings) -> Iterator[str]:
    """The session's topic prefix. At the session's end, its topics go, with those of every new_topic_prefix: left
    behind, their partitions would slow the broker's start and background work on every later run."""
    yield new_topic_prefix("session")
    asyncio.run(delete_topics(infra.kafka_bootstrap_servers, SESSION_TOPICS))


@pytest.fixture(scope="session")
def service_env(database_url: str, topic_prefix: str, infra: ServiceSettings) -> dict[str, str]:
    """Environment for services under test; PARTITIONS small to keep the broker quick."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "TOPIC_PREFIX": topic_prefix,
        "TOPIC_PARTITIONS": "4",
        "ENVIRONMENT": "test",
        "LOG_LEVEL": os.environ.get("TEST_SERVICE_LOG_LEVEL", "INFO"),
    }


def settings_for(service: str, env: dict[str, str], **overrides: object):
    """The service's own settings class, configured for the test database and topics."""
    module = __import__(f"services.{service}.settings", fromlist=["get_settings"])
    cls = type(module.get_settings())
    values = {k.lower(): v for k, v in env.items()}
    return cls(**{**values, **overrides})


@pytest.fixture(scope="session")
def migrated(service_env: dict[str, str]) -> dict[str, str]:
    """Every service's migrations applied to the session database."""
    for service in SERVICES:
        upgrade(f"services.{service}", settings_for(service, service_env))
    return service_env


@pytest.fixture
async def engine_for(migrated: dict[str, str]) -> AsyncIterator:
    from shared.db import make_engine

    engines = []

    def make(service: str, **overrides: object):
        engine = make_engine(settings_for(service, migrated, **overrides))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.dispose()

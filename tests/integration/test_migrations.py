"""Each service's migrations apply to an empty database and touch nothing outside the service's schema."""

import asyncio
import uuid

import asyncpg
import pytest

from shared.migrations import upgrade
from tests.conftest import SERVICES, settings_for


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_apply_to_an_empty_database_inside_their_own_schema(service, infra):
    name = f"mig_{service}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(infra.asyncpg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = infra.database_url.rsplit("/", 1)[0] + f"/{name}"
        settings = settings_for(service, {"database_url": url})
        await asyncio.to_thread(upgrade, f"services.{service}", settings)
        await asyncio.to_thread(upgrade, f"services.{service}", settings)  # a second run is a no-op

        conn = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            objects = await conn.fetch(
                """SELECT n.nspname AS schema, c.relname AS name FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"""
            )
            functions = await conn.fetch(
                """SELECT n.nspname AS schema FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"""
            )
            schemas = {r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")}
            version = await conn.fetchval(f'SELECT version_num FROM "{service}".alembic_version')
        finally:
            await conn.close()
        assert objects, "the migration created nothing"
        assert {r["schema"] for r in objects} == {service}
        assert {r["schema"] for r in functions} <= {service}
        assert schemas - {"public", "information_schema"} - {s for s in schemas if s.startswith("pg_")} == {service}
        assert {"outbox", "handled_events", "idempotency_keys", "alembic_version"} <= {r["name"] for r in objects}
        assert version == "0001"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

"""Each service's migrations apply to an empty database, touch nothing outside the service's schema, and give the
tables the service's code describes."""

import asyncio
import importlib
import uuid

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrations import alembic_config, upgrade
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
        head = ScriptDirectory.from_config(alembic_config(f"services.{service}", settings)).get_current_head()
        assert version == head

        metadata = importlib.import_module(f"services.{service}.adapters.tables").metadata
        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                drift = await conn.run_sync(
                    lambda sync_conn: compare_metadata(
                        MigrationContext.configure(
                            sync_conn,
                            opts={
                                "include_schemas": True,
                                "include_name": lambda name, kind, _: kind != "schema" or name == service,
                                "include_object": lambda _, name, kind, *__: name != "alembic_version",
                            },
                        ),
                        metadata,
                    )
                )
        finally:
            await engine.dispose()
        assert drift == [], f"the migrations and services/{service}/adapters/tables.py differ: {drift}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

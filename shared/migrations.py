"""Alembic, run programmatically: each service keeps its migrations in `services/<name>/migrations` and its
version table in its own schema, so a service's migrations touch nothing outside it."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import ServiceSettings


def alembic_config(service_package: str, settings: ServiceSettings) -> Config:
    package_dir = Path(importlib.import_module(service_package).__file__).parent  # type: ignore[arg-type]
    config = Config()
    config.set_main_option("script_location", str(package_dir / "migrations"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["settings"] = settings
    return config


def upgrade(service_package: str, settings: ServiceSettings, revision: str = "head") -> None:
    """Blocking; from async code call it through asyncio.to_thread."""
    command.upgrade(alembic_config(service_package, settings), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    settings: ServiceSettings = context.config.attributes["settings"]
    schema = settings.db_schema

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
            compare_type=True,
        )
        with context.begin_transaction():
            # Two instances starting at once must not migrate twice.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())

"""Alembic, run programmatically: each service keeps its migrations in `services/<name>/migrations` and its
version table in its own schema, so a service's migrations touch nothing outside it."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.messaging.outbox import notify_trigger_ddl
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


def create_messaging_tables(schema: str) -> None:
    """The tables every service's first migration creates: outbox (with its NOTIFY trigger), handled events and
    idempotency keys, as `shared.db.service_metadata` declares them. Later changes to them go into new migrations,
    never here, so that a first migration always builds what it built."""
    now = sa.text("now()")
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False, comment="the event as JSON, published byte for byte"),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("available_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        schema=schema,
    )
    op.create_table(
        "handled_events",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_handled_events")),
        schema=schema,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text(), nullable=False, comment="merchant id and operation"),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True, comment="the first answer's body, replayed byte for byte"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
        schema=schema,
    )
    for statement in notify_trigger_ddl(schema):
        op.execute(statement)


def drop_messaging_tables(schema: str) -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {schema}.outbox_notify() CASCADE")
    for table in ("outbox", "idempotency_keys", "handled_events"):
        op.drop_table(table, schema=schema)


def index_handled_events_by_age(schema: str) -> None:
    """Revision 2 of the messaging tables: handled events by age, for pruning (BRIN: rows arrive in time order)."""
    op.create_index(
        op.f("ix_handled_events_handled_at"), "handled_events", ["handled_at"], schema=schema, postgresql_using="brin"
    )


def drop_handled_events_by_age(schema: str) -> None:
    op.drop_index(op.f("ix_handled_events_handled_at"), table_name="handled_events", schema=schema)

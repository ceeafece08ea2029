"""Database plumbing shared by the services: one async engine per service, tables in the service's own schema,
and the tables every service has (outbox, handled events, idempotency keys)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import orjson
from sqlalchemy import (
    BigInteger,
    BindParameter,
    Column,
    ColumnElement,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Uuid,
    bindparam,
    column,
    delete,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, Insert, insert
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.selectable import TableValuedAlias

from shared.settings import ServiceSettings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def Timestamp(name: str, **kw) -> Column:
    return Column(name, DateTime(timezone=True), **kw)


def service_metadata(schema: str) -> MetaData:
    """A service's metadata with the tables every service has."""
    metadata = MetaData(schema=schema, naming_convention=NAMING)
    Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("value", Text, nullable=False, comment="the event as JSON, published byte for byte"),
        Column("correlation_id", Text),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Timestamp("available_at", nullable=False, server_default=func.now()),
        Timestamp("created_at", nullable=False, server_default=func.now()),
    )
    Table(
        "handled_events",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Timestamp("handled_at", nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
        # For pruning by age: rows arrive in time order, so a BRIN index is a few pages, nearly free to keep up.
        Index(None, "handled_at", postgresql_using="brin"),
    )
    Table(
        "idempotency_keys",
        metadata,
        Column("scope", Text, nullable=False, comment="merchant id and operation"),
        Column("key", Text, nullable=False),
        Column("request_hash", Text, nullable=False),
        Column("status_code", SmallInteger),
        Column("response", Text, comment="the first answer's body, replayed byte for byte"),
        Timestamp("created_at", nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("scope", "key"),
    )
    return metadata


def _json_text(value: object) -> str:
    # Several times faster than the standard library on the JSONB columns every event touches; like it, keys that
    # are not strings are written as strings. Decimals go as strings, exact (rows given to `records`).
    return orjson.dumps(value, default=_exact, option=orjson.OPT_NON_STR_KEYS).decode()


def _exact(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def make_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=False,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )


def text_array(name: str) -> BindParameter:
    """A text[] parameter: a statement that takes its values as one array reads the same whatever their number,
    so it is prepared once (an IN list is rendered anew for every length)."""
    return bindparam(name, type_=ARRAY(Text))


@functools.cache
def records(table: Table, name: str = "records") -> TableValuedAlias:
    """Rows given as one JSON array of objects (by column name), read as rows of `table`: any number of rows with
    columns of any type (arrays, JSON, numerics, timestamps) in one execution of one prepared statement. Use it to
    INSERT ... SELECT, UPDATE ... FROM or upsert many rows; execute with {name: [row dicts]}. A key missing from a
    row reads as NULL. (An executemany runs its statement once per row; a VALUES list is compiled and prepared anew
    for every row count.)"""
    rows = bindparam(name, type_=JSONB)
    return func.jsonb_populate_recordset(literal_column(f"NULL::{table.fullname}"), rows).table_valued(
        *(column(c.name, c.type) for c in table.c)
    )


@functools.cache
def insert_records(table: Table, *columns: str, name: str = "records") -> Insert:
    """INSERT INTO table (columns) the rows given as {name: [row dicts]} (see `records`); the other columns take
    their defaults. Built once per table and columns: SQLAlchemy computes a new statement object's cache key on
    every execution, about half of the Python time of running it."""
    rows = records(table, name)
    return insert(table).from_select(list(columns), select(*(rows.c[c] for c in columns)))


async def prune(engine: AsyncEngine, table: Table, *where: ColumnElement[bool], batch: int = 10_000) -> int:
    """Delete the rows of `table` that match `where`, a batch per transaction (one DELETE of millions of rows would
    hold its locks and its transaction for minutes); returns how many."""
    key = table.primary_key.columns
    chosen = select(*key).where(*where).limit(batch)
    pruned = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(delete(table).where(tuple_(*key).in_(chosen)))).rowcount
        pruned += deleted
        if deleted < batch:
            return pruned


def common_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """The outbox, handled-events and idempotency-key tables of a service's metadata."""
    return tuple(
        metadata.tables[f"{metadata.schema}.{name}"] for name in ("outbox", "handled_events", "idempotency_keys")
    )


def unavailable(exc: BaseException) -> bool:
    """A failure of the infrastructure (the database or the network away) rather than of the work itself."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # SQLSTATE class 08 (connection exception) and 57 (operator intervention: "the database system is shutting
    # down", "... is starting up"): the server is restarting, not refusing the work.
    if isinstance(exc, DBAPIError) and str(getattr(exc.orig, "sqlstate", None) or "")[:2] in ("08", "57"):
        return True
    return isinstance(exc, OSError | InterfaceError | ConnectionError | TimeoutError)


@asynccontextmanager
async def snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read made of several statements that must agree (a resource and its parts): one snapshot for all, or a
    change committed between them would show, say, an order in Processing without its payment."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="REPEATABLE READ")

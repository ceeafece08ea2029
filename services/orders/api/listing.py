"""Keyset pages for the simple lists (ordered by id) and the mapping of domain errors to problem documents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import BaseModel
from sqlalchemy import Column, Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.orders.adapters.repository import StaleOrder
from services.orders.domain.order import InvalidRequest
from shared.errors import Conflict, Unprocessable
from shared.pagination import decode_cursor, encode_cursor


async def page_by_id(
    conn: AsyncConnection,
    query: Select,
    id_column: Column,
    limit: int,
    cursor: str | None,
    convert: Callable[[Row], BaseModel],
) -> tuple[list, str | None]:
    if cursor:
        query = query.where(id_column > decode_cursor(cursor, str)[0])
    rows = (await conn.execute(query.order_by(id_column).limit(limit + 1))).all()
    items = [convert(r) for r in rows[:limit]]
    return items, encode_cursor(rows[limit - 1].id) if len(rows) > limit else None


@contextmanager
def domain_errors() -> Iterator[None]:
    """Invalid input named by the aggregate -> 422 with the field; a lost race on the order's version -> 409."""
    try:
        yield
    except InvalidRequest as exc:
        raise Unprocessable(str(exc), errors=[{"field": exc.field, "message": exc.message}]) from exc
    except StaleOrder as exc:
        raise Conflict(f"order {exc} changed meanwhile; read it again and retry") from exc

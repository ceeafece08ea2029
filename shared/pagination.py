"""Keyset pagination: opaque cursors holding the position of the last item of a page, base64url-encoded."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.errors import Unprocessable


def encode_cursor(*position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode()


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The position a cursor holds, checked against the kinds it must have (str, int or an aware datetime), so
    that a cursor this API did not issue is a 422 and never reaches the database."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(value, list) or len(value) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(_as(kind, item) for kind, item in zip(kinds, value, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Unprocessable("the cursor is not one this API issued", errors=[{"field": "cursor"}]) from exc


def _as(kind: type, item: object) -> object:
    if kind is datetime:
        if not isinstance(item, str):
            raise TypeError("not a time")
        moment = datetime.fromisoformat(item)
        if moment.tzinfo is None:
            raise ValueError("not an aware time")
        return moment
    if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
        raise TypeError("not an integer")
    if kind is str and not isinstance(item, str):
        raise TypeError("not a string")
    return item


async def keyset_page(
    engine: AsyncEngine,
    query: Select,
    column_at: ColumnElement,
    column_id: ColumnElement,
    limit: int,
    cursor: str | None,
    *,
    ascending: bool = True,
) -> tuple[list[Row], str | None]:
    """One page of `query` ordered by (a timestamp, an id), and the cursor of the next page (None on the last)."""
    if cursor:
        position, after = tuple_(column_at, column_id), tuple_(*decode_cursor(cursor, datetime, str))
        query = query.where(position > after if ascending else position < after)
    order = (column_at, column_id) if ascending else (column_at.desc(), column_id.desc())
    async with engine.connect() as conn:
        rows = list((await conn.execute(query.order_by(*order).limit(limit + 1))).all())
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = (
        encode_cursor(getattr(last, column_at.key).isoformat(), getattr(last, column_id.key)) if last else None
    )
    return rows[:limit], next_cursor

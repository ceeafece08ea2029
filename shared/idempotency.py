"""Idempotency-Key handling inside the caller's transaction.

The key row is inserted first; a concurrent request with the same key blocks on that row until the first one
commits, then replays its stored answer. If the first one rolls back, the key was never taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.errors import Unprocessable

JSON = "application/json"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def claim(conn: AsyncConnection, table: Table, scope: str, key: str, body: bytes) -> StoredResponse | None:
    """Reserve the key, or return the answer stored for it. Same key, different body -> 422."""
    digest = request_hash(body)
    taken = (
        await conn.execute(
            pg_insert(table)
            .values(scope=scope, key=key, request_hash=digest)
            .on_conflict_do_nothing()
            .returning(table.c.key)
        )
    ).first()
    if taken is not None:
        return None
    row = (
        await conn.execute(
            select(table.c.request_hash, table.c.status_code, table.c.response).where(
                table.c.scope == scope, table.c.key == key
            )
        )
    ).one()
    if row.request_hash != digest:
        raise Unprocessable("this Idempotency-Key was used with a different request body")
    return StoredResponse(row.status_code, row.response)


async def store(conn: AsyncConnection, table: Table, scope: str, key: str, status_code: int, response: str) -> None:
    await conn.execute(
        update(table)
        .where(table.c.scope == scope, table.c.key == key)
        .values(status_code=status_code, response=response)
    )


async def run_once(
    conn: AsyncConnection,
    table: Table,
    *,
    scope: str,
    key: str | None,
    body: bytes,
    status_code: int,
    action: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """Run `action` in the caller's transaction unless this key already ran; answer as the first time did.
    A failed action (an exception) rolls back with the transaction and leaves the key free for a retry."""
    if key is not None:
        if not 0 < len(key) <= 255:
            raise Unprocessable("Idempotency-Key must be 1 to 255 characters", errors=[{"field": "Idempotency-Key"}])
        stored = await claim(conn, table, scope, key, body)
        if stored is not None:
            return Response(stored.body, stored.status_code, headers={"Idempotent-Replayed": "true"}, media_type=JSON)
    result = (await action()).model_dump_json()
    if key is not None:
        await store(conn, table, scope, key, status_code, result)
    return Response(result, status_code, media_type=JSON)


class IdempotentCall:
    """A POST that creates something or moves money: its Idempotency-Key and body, to run it once (`run_once`)."""

    def __init__(
        self,
        request: Request,
        key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", description="the same key and body get the first answer again"),
        ] = None,
    ) -> None:
        self.request, self.key = request, key

    async def run(
        self,
        conn: AsyncConnection,
        table: Table,
        scope: str,
        action: Callable[[], Awaitable[BaseModel]],
        status_code: int = 200,
    ) -> Response:
        body = await self.request.body()
        return await run_once(conn, table, scope=scope, key=self.key, body=body, status_code=status_code, action=action)


Idempotent = Annotated[IdempotentCall, Depends()]

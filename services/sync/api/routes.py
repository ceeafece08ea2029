from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from sqlalchemy import select

from services.sync import handlers
from services.sync.adapters.tables import stores
from services.sync.api.schemas import StoreCreate, StorePublic, StoresPage, WebhookAccepted
from shared.auth import Merchant
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(responses=PROBLEM_RESPONSES)


@router.post("/v1/stores", status_code=201, tags=["stores"], summary="Connect a Shopify or WooCommerce store")
async def create_store(body: StoreCreate, user: Merchant, engine: Engine, request: Request) -> StorePublic:
    async with engine.begin() as conn:
        row = await handlers.create_store(conn, request.app.state.secret_box, user.merchant_id, body.plain())
    return StorePublic.model_validate(row)


@router.get("/v1/stores", tags=["stores"], summary="The merchant's stores")
async def list_stores(user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> StoresPage:
    query = select(stores).where(stores.c.merchant_id == user.merchant_id).order_by(stores.c.id).limit(limit + 1)
    if cursor:
        query = query.where(stores.c.id > decode_cursor(cursor)[0])
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return StoresPage(
        items=[StorePublic.model_validate(dict(r._mapping)) for r in rows[:limit]],
        next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None,
    )


@router.get("/v1/stores/{store_id}", tags=["stores"], summary="One store")
async def get_store(store_id: str, user: Merchant, engine: Engine) -> StorePublic:
    async with engine.connect() as conn:
        return StorePublic.model_validate(await handlers.get_store(conn, user.merchant_id, store_id))


@router.post("/webhooks/shopify", tags=["webhooks"], summary="Shopify order webhooks (HMAC-signed)")
async def shopify_webhook(
    request: Request,
    engine: Engine,
    x_shopify_shop_domain: Annotated[str | None, Header()] = None,
    x_shopify_topic: Annotated[str | None, Header()] = None,
    x_shopify_webhook_id: Annotated[str | None, Header()] = None,
    x_shopify_hmac_sha256: Annotated[str | None, Header()] = None,
) -> WebhookAccepted:
    body = await request.body()
    async with engine.begin() as conn:
        result = await handlers.receive_shopify_webhook(
            conn,
            request.app.state.secret_box,
            shop_domain=x_shopify_shop_domain,
            topic=x_shopify_topic,
            webhook_id=x_shopify_webhook_id,
            signature=x_shopify_hmac_sha256,
            body=body,
        )
    return WebhookAccepted(outcome=result.outcome, order_id=result.order_id)

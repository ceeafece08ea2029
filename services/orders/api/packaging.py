"""Custom packaging: the merchant's private products (packaging items, cards) and the rules that put them into
every synced order of a store, or of a store's product."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from services.orders import handlers
from services.orders.adapters.tables import packaging_rules, private_products
from services.orders.api.listing import page_by_id
from services.orders.api.schemas import (
    PackagingRuleCreate,
    PackagingRulePublic,
    PackagingRulesPage,
    PrivateProductCreate,
    PrivateProductPublic,
    PrivateProductsPage,
)
from shared.auth import Merchant
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit

router = APIRouter(
    prefix="/v1",
    responses=PROBLEM_RESPONSES,
    tags=["packaging"],
)


@router.post("/private-products", status_code=201, summary="Add a packaging item or a custom card")
async def add_private_product(body: PrivateProductCreate, user: Merchant, engine: Engine) -> PrivateProductPublic:
    async with engine.begin() as conn:
        return PrivateProductPublic.model_validate(
            await handlers.add_private_product(conn, user.merchant_id, body.model_dump())
        )


@router.get("/private-products", summary="The merchant's private products")
async def list_private_products(
    user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None
) -> PrivateProductsPage:
    pp = private_products
    query = select(pp).where(pp.c.merchant_id == user.merchant_id)
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(
            conn, query, pp.c.id, limit, cursor, lambda r: PrivateProductPublic.model_validate(dict(r._mapping))
        )
    return PrivateProductsPage(items=items, next_cursor=next_cursor)


@router.post("/packaging-rules", status_code=201, summary="Pack a private product with a store's (product's) orders")
async def add_packaging_rule(body: PackagingRuleCreate, user: Merchant, engine: Engine) -> PackagingRulePublic:
    async with engine.begin() as conn:
        return PackagingRulePublic.model_validate(
            await handlers.add_packaging_rule(conn, user.merchant_id, body.model_dump())
        )


@router.get("/packaging-rules", summary="The merchant's packaging rules")
async def list_packaging_rules(
    user: Merchant, engine: Engine, store_id: str | None = None, limit: Limit = 50, cursor: Cursor = None
) -> PackagingRulesPage:
    pr = packaging_rules
    query = select(pr).where(pr.c.merchant_id == user.merchant_id)
    if store_id:
        query = query.where(pr.c.store_id == store_id)
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(
            conn, query, pr.c.id, limit, cursor, lambda r: PackagingRulePublic.model_validate(dict(r._mapping))
        )
    return PackagingRulesPage(items=items, next_cursor=next_cursor)


@router.delete("/packaging-rules/{rule_id}", status_code=204, summary="Remove a rule (orders synced later)")
async def delete_packaging_rule(rule_id: str, user: Merchant, engine: Engine) -> Response:
    async with engine.begin() as conn:
        await handlers.delete_packaging_rule(conn, user.merchant_id, rule_id)
    return Response(status_code=204)

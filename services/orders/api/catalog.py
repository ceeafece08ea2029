"""The catalog (ops), the merchant's product connections and settings, and quotes for unconnected products."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import or_, select

from services.orders import handlers
from services.orders.adapters.tables import (
    catalog_products,
    catalog_variants,
    idempotency_keys,
    merchant_settings,
    product_connections,
    quotes,
)
from services.orders.api.listing import page_by_id
from services.orders.api.schemas import (
    CatalogProductCreate,
    CatalogProductPublic,
    CatalogProductsPage,
    CatalogVariantCreate,
    CatalogVariantPublic,
    CatalogVariantsPage,
    CatalogVariantUpdate,
    ConnectionsPage,
    OrderSettings,
    ProductConnectionCreate,
    ProductConnectionPublic,
    QuoteAnswer,
    QuoteCreate,
    QuotePublic,
    QuotesPage,
    Rejection,
)
from shared.auth import AnyUser, Merchant, Ops
from shared.errors import NotFound
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.idempotency import Idempotent

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


def _model(model):
    return lambda row: model.model_validate(dict(row._mapping))


# --- catalog -------------------------------------------------------------------------------------------------


@router.post("/catalog/products", status_code=201, tags=["catalog"], summary="Add a sourced product (ops)")
async def add_catalog_product(body: CatalogProductCreate, _: Ops, engine: Engine) -> CatalogProductPublic:
    async with engine.begin() as conn:
        return CatalogProductPublic.model_validate(await handlers.add_catalog_product(conn, body.model_dump()))


@router.get("/catalog/products", tags=["catalog"], summary="Search sourced products by title")
async def list_catalog_products(
    _: AnyUser, engine: Engine, q: str | None = None, limit: Limit = 50, cursor: Cursor = None
) -> CatalogProductsPage:
    query = select(catalog_products)
    if q:
        query = query.where(catalog_products.c.title.ilike(f"%{_escape(q)}%"))
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(
            conn, query, catalog_products.c.id, limit, cursor, _model(CatalogProductPublic)
        )
    return CatalogProductsPage(items=items, next_cursor=next_cursor)


@router.post("/catalog/variants", status_code=201, tags=["catalog"], summary="Add a sourced product variant (ops)")
async def add_catalog_variant(body: CatalogVariantCreate, _: Ops, engine: Engine) -> CatalogVariantPublic:
    async with engine.begin() as conn:
        row = await handlers.add_catalog_variant(conn, body.model_dump())
    return CatalogVariantPublic.model_validate(row)


@router.patch("/catalog/variants/{variant_id}", tags=["catalog"], summary="Change cost, weight or status (ops)")
async def update_catalog_variant(
    variant_id: str, body: CatalogVariantUpdate, _: Ops, engine: Engine
) -> CatalogVariantPublic:
    async with engine.begin() as conn:
        row = await handlers.update_catalog_variant(conn, variant_id, body.model_dump(exclude_none=True))
    return CatalogVariantPublic.model_validate(row)


@router.get("/catalog/variants", tags=["catalog"], summary="Search the catalog by SKU, title, product or status")
async def list_catalog_variants(
    _: AnyUser,
    engine: Engine,
    sku: str | None = None,
    q: Annotated[str | None, Query(description="part of the SKU or title")] = None,
    product_id: str | None = None,
    status: Literal["active", "inactive"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CatalogVariantsPage:
    cv = catalog_variants.c
    query = select(catalog_variants)
    if sku:
        query = query.where(cv.sku == sku)
    if q:
        query = query.where(or_(cv.sku.ilike(f"%{_escape(q)}%"), cv.title.ilike(f"%{_escape(q)}%")))
    if product_id:
        query = query.where(cv.product_id == product_id)
    if status:
        query = query.where(cv.status == status)
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(conn, query, cv.id, limit, cursor, _model(CatalogVariantPublic))
    return CatalogVariantsPage(items=items, next_cursor=next_cursor)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- product connections -------------------------------------------------------------------------------------


@router.post(
    "/product-connections",
    status_code=201,
    tags=["product connections"],
    summary="Connect a store product to a catalog variant; its Quoting orders move to To Order",
)
async def connect_product(body: ProductConnectionCreate, user: Merchant, engine: Engine) -> ProductConnectionPublic:
    async with engine.begin() as conn:
        row = await handlers.connect_product(conn, user.merchant_id, body.model_dump(), f"user:{user.sub}")
    return ProductConnectionPublic.model_validate(row)


@router.delete(
    "/product-connections/{connection_id}",
    status_code=204,
    tags=["product connections"],
    summary="Disconnect; To Order orders that need it go back to Quoting",
)
async def disconnect_product(connection_id: str, user: Merchant, engine: Engine) -> Response:
    async with engine.begin() as conn:
        await handlers.disconnect_product(conn, user.merchant_id, connection_id, f"user:{user.sub}")
    return Response(status_code=204)


@router.get("/product-connections", tags=["product connections"], summary="The merchant's connections")
async def list_connections(
    user: Merchant, engine: Engine, store_id: str | None = None, limit: Limit = 50, cursor: Cursor = None
) -> ConnectionsPage:
    pc = product_connections
    query = select(pc).where(pc.c.merchant_id == user.merchant_id)
    if store_id:
        query = query.where(pc.c.store_id == store_id)
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(conn, query, pc.c.id, limit, cursor, _model(ProductConnectionPublic))
    return ConnectionsPage(items=items, next_cursor=next_cursor)


@router.get("/order-settings", tags=["product connections"], summary="The merchant's order settings")
async def get_settings(user: Merchant, engine: Engine) -> OrderSettings:
    ms = merchant_settings.c
    async with engine.connect() as conn:
        on = await conn.scalar(select(ms.auto_connect_by_sku).where(ms.merchant_id == user.merchant_id))
    return OrderSettings(auto_connect_by_sku=bool(on))


@router.put("/order-settings", tags=["product connections"], summary="Turn auto-connect by SKU on or off")
async def put_settings(body: OrderSettings, user: Merchant, engine: Engine) -> OrderSettings:
    async with engine.begin() as conn:
        await handlers.set_merchant_settings(conn, user.merchant_id, body.auto_connect_by_sku)
    return body


# --- quotes --------------------------------------------------------------------------------------------------


@router.post(
    "/quotes",
    status_code=201,
    response_model=QuotePublic,
    tags=["quotes"],
    summary="Ask for a quote on an unconnected store product",
)
async def request_quote(
    body: QuoteCreate,
    user: Merchant,
    engine: Engine,
    once: Idempotent,
) -> Response:
    async def action() -> QuotePublic:
        return QuotePublic.model_validate(await handlers.request_quote(conn, user.merchant_id, body.model_dump()))

    async with engine.begin() as conn:
        return await once.run(conn, idempotency_keys, f"{user.merchant_id}:quote", action, status_code=201)


@router.get("/quotes", tags=["quotes"], summary="Quotes and their progress (a merchant's own; ops: every one)")
async def list_quotes(
    user: AnyUser,
    engine: Engine,
    status: Literal["to_claim", "processing", "finished", "declined"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> QuotesPage:
    query = select(quotes)
    if user.role == "merchant":
        query = query.where(quotes.c.merchant_id == user.merchant_id)
    if status:
        query = query.where(quotes.c.status == status)
    async with engine.connect() as conn:
        items, next_cursor = await page_by_id(conn, query, quotes.c.id, limit, cursor, _model(QuotePublic))
    return QuotesPage(items=items, next_cursor=next_cursor)


@router.get("/quotes/{quote_id}", tags=["quotes"], summary="One quote")
async def get_quote(quote_id: str, user: AnyUser, engine: Engine) -> QuotePublic:
    async with engine.connect() as conn:
        row = (await conn.execute(select(quotes).where(quotes.c.id == quote_id))).first()
    if row is None or (user.role == "merchant" and row.merchant_id != user.merchant_id):
        raise NotFound(f"quote {quote_id} not found")
    return QuotePublic.model_validate(dict(row._mapping))


@router.post("/quotes/{quote_id}/claim", tags=["quotes"], summary="Take a quote to work on (ops)")
async def claim_quote(quote_id: str, user: Ops, engine: Engine) -> QuotePublic:
    async with engine.begin() as conn:
        return QuotePublic.model_validate(await handlers.claim_quote(conn, quote_id, f"user:{user.sub}"))


@router.post(
    "/quotes/{quote_id}/answer",
    tags=["quotes"],
    summary="Price it with a catalog variant (ops): connects the product and moves its Quoting orders",
)
async def answer_quote(quote_id: str, body: QuoteAnswer, user: Ops, engine: Engine) -> QuotePublic:
    async with engine.begin() as conn:
        row = await handlers.answer_quote(
            conn, quote_id, body.catalog_variant_id, body.quantity_ratio, f"user:{user.sub}"
        )
    return QuotePublic.model_validate(row)


@router.post("/quotes/{quote_id}/decline", tags=["quotes"], summary="Decline with a reason (ops)")
async def decline_quote(quote_id: str, body: Rejection, user: Ops, engine: Engine) -> QuotePublic:
    async with engine.begin() as conn:
        return QuotePublic.model_validate(await handlers.decline_quote(conn, quote_id, body.reason, f"user:{user.sub}"))

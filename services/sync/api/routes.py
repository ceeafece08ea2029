from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from sqlalchemy import or_, select

from services.sync import handlers, polling
from services.sync.adapters.store_clients import StoreError, client_for
from services.sync.adapters.tables import (
    idempotency_keys,
    stores,
    sync_jobs,
    tracking_pushes,
    webhook_deliveries,
    webhook_failures,
)
from services.sync.api.schemas import (
    StoreCreate,
    StorePublic,
    StoresPage,
    StoreUpdate,
    SyncJobPublic,
    SyncJobsPage,
    TrackingPushesPage,
    TrackingPushPublic,
    WebhookDeliveriesPage,
    WebhookDeliveryPublic,
    WebhookFailurePublic,
    WebhookFailuresPage,
    WebhooksRegistered,
)
from services.sync.domain.store_settings import StoreSettings
from shared.auth import Merchant
from shared.errors import Conflict, NotFound
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.idempotency import Idempotent
from shared.pagination import decode_cursor, encode_cursor, keyset_page

router = APIRouter(responses=PROBLEM_RESPONSES)


def _allow_http(request: Request) -> bool:
    """Plain-http store URLs (the emulators) only outside production."""
    return request.app.state.settings.environment != "production"


# --- stores ----------------------------------------------------------------------------------------------------


@router.post("/v1/stores", status_code=201, tags=["stores"], summary="Connect a Shopify or WooCommerce store")
async def create_store(
    body: StoreCreate, user: Merchant, engine: Engine, request: Request, once: Idempotent
) -> StorePublic:
    async def action() -> StorePublic:
        row = await handlers.create_store(
            conn, request.app.state.secret_box, user.merchant_id, body.plain(), allow_http=_allow_http(request)
        )
        return StorePublic.model_validate(row)

    async with engine.begin() as conn:
        return await once.run(conn, idempotency_keys, f"{user.merchant_id}:create-store", action, status_code=201)


@router.get("/v1/stores", tags=["stores"], summary="The merchant's stores")
async def list_stores(user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> StoresPage:
    query = (
        select(stores)
        .where(stores.c.merchant_id == user.merchant_id, stores.c.status != "removed")
        .order_by(stores.c.id)
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(stores.c.id > decode_cursor(cursor, str)[0])
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return StoresPage(
        items=[StorePublic.model_validate(dict(r._mapping)) for r in rows[:limit]],
        next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None,
    )


@router.get("/v1/stores/{store_id}", tags=["stores"], summary="One store")
async def get_store(store_id: str, user: Merchant, engine: Engine) -> StorePublic:
    async with engine.connect() as conn:
        return StorePublic.model_validate(dict((await handlers.get_store(conn, user.merchant_id, store_id))._mapping))


@router.patch("/v1/stores/{store_id}", tags=["stores"], summary="Rename a store or give it new credentials")
async def update_store(
    store_id: str, body: StoreUpdate, user: Merchant, engine: Engine, request: Request
) -> StorePublic:
    async with engine.begin() as conn:
        row = await handlers.update_store(
            conn,
            request.app.state.secret_box,
            user.merchant_id,
            store_id,
            body.plain(),
            allow_http=_allow_http(request),
        )
    request.app.state.webhooks.directory.forget(row["id"], row["shop_domain"])
    return StorePublic.model_validate(row)


@router.delete("/v1/stores/{store_id}", status_code=204, tags=["stores"], summary="Disconnect a store for good")
async def remove_store(store_id: str, user: Merchant, engine: Engine, request: Request) -> Response:
    async with engine.begin() as conn:
        removed = await handlers.remove_store(conn, request.app.state.secret_box, user.merchant_id, store_id)
    request.app.state.webhooks.directory.forget(removed.id, removed.shop_domain)
    return Response(status_code=204)


@router.get("/v1/stores/{store_id}/settings", tags=["stores"], summary="A store's sync and write-back settings")
async def get_settings(store_id: str, user: Merchant, engine: Engine) -> StoreSettings:
    async with engine.connect() as conn:
        return StoreSettings.model_validate((await handlers.get_store(conn, user.merchant_id, store_id)).settings)


@router.put("/v1/stores/{store_id}/settings", tags=["stores"], summary="Replace a store's settings")
async def put_settings(store_id: str, body: StoreSettings, user: Merchant, engine: Engine) -> StoreSettings:
    async with engine.begin() as conn:
        return await handlers.put_settings(conn, user.merchant_id, store_id, body)


@router.post(
    "/v1/stores/{store_id}/webhooks",
    tags=["stores"],
    summary="Register our webhooks in the store (needs SYNC_PUBLIC_URL)",
)
async def register_webhooks(store_id: str, user: Merchant, engine: Engine, request: Request) -> WebhooksRegistered:
    settings, box = request.app.state.settings, request.app.state.secret_box
    if not settings.sync_public_url:
        raise Conflict("this service does not know its public URL (SYNC_PUBLIC_URL)")
    async with engine.connect() as conn:
        store = await handlers.get_store(conn, user.merchant_id, store_id)
    path = "/webhooks/shopify" if store.platform == "shopify" else f"/webhooks/woocommerce/{store.id}"
    address = settings.sync_public_url.rstrip("/") + path
    client = client_for(
        store.platform,
        store.api_url,
        json.loads(box.open(store.credentials)),
        timeout=settings.store_timeout_seconds,
        max_retries=settings.store_max_retries,
        backoff_seconds=settings.store_backoff_seconds,
    )
    try:
        topics = await client.register_webhooks(address, box.open(store.webhook_secret))
    except StoreError as exc:
        raise Conflict(f"the store refused: {exc}") from exc
    finally:
        await client.aclose()
    return WebhooksRegistered(address=address, topics=topics)


# --- sync jobs -------------------------------------------------------------------------------------------------


@router.post(
    "/v1/stores/{store_id}/sync",
    status_code=202,
    tags=["sync jobs"],
    summary="Sync Orders: start a sync job (or get the one running); follow it at /v1/sync-jobs/{id}",
)
async def sync_orders(store_id: str, user: Merchant, engine: Engine, request: Request) -> SyncJobPublic:
    async with engine.begin() as conn:
        store = await handlers.get_store(conn, user.merchant_id, store_id)
        if store.status != "connected":
            raise Conflict(f"the store is {store.status}: {store.status_reason}", current_status=store.status)
        job, created = await polling.start_job(conn, store, "manual", request.app.state.settings)
    if created:
        polling.launch(request.app, job)
    return SyncJobPublic.model_validate(dict(job._mapping))


@router.get("/v1/stores/{store_id}/sync-jobs", tags=["sync jobs"], summary="A store's sync jobs, newest first")
async def list_sync_jobs(
    store_id: str, user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None
) -> SyncJobsPage:
    async with engine.connect() as conn:
        await handlers.get_store(conn, user.merchant_id, store_id)
    query = select(sync_jobs).where(sync_jobs.c.store_id == store_id)
    rows, next_cursor = await keyset_page(
        engine, query, sync_jobs.c.started_at, sync_jobs.c.id, limit, cursor, ascending=False
    )
    return SyncJobsPage(items=[SyncJobPublic.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor)


@router.get("/v1/sync-jobs/{job_id}", tags=["sync jobs"], summary="A sync job and its progress")
async def get_sync_job(job_id: str, user: Merchant, engine: Engine) -> SyncJobPublic:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(sync_jobs).where(sync_jobs.c.id == job_id, sync_jobs.c.merchant_id == user.merchant_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"sync job {job_id} not found")
    return SyncJobPublic.model_validate(dict(row._mapping))


# --- failures the merchant can see -----------------------------------------------------------------------------


@router.get(
    "/v1/webhook-failures",
    tags=["webhooks"],
    summary="Webhook payloads we could not use, kept as received, newest first",
)
async def list_webhook_failures(
    user: Merchant, engine: Engine, store_id: str | None = None, limit: Limit = 50, cursor: Cursor = None
) -> WebhookFailuresPage:
    query = select(webhook_failures).where(webhook_failures.c.merchant_id == user.merchant_id)
    if store_id:
        query = query.where(webhook_failures.c.store_id == store_id)
    rows, next_cursor = await keyset_page(
        engine, query, webhook_failures.c.received_at, webhook_failures.c.id, limit, cursor, ascending=False
    )
    return WebhookFailuresPage(
        items=[WebhookFailurePublic.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/v1/stores/{store_id}/deliveries",
    tags=["webhooks"],
    summary="The store's webhook deliveries and what each one did, newest first",
)
async def list_deliveries(
    store_id: str, user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None
) -> WebhookDeliveriesPage:
    async with engine.connect() as conn:
        await handlers.get_store(conn, user.merchant_id, store_id)
    query = select(webhook_deliveries).where(webhook_deliveries.c.store_id == store_id)
    rows, next_cursor = await keyset_page(
        engine,
        query,
        webhook_deliveries.c.received_at,
        webhook_deliveries.c.delivery_key,
        limit,
        cursor,
        ascending=False,
    )
    return WebhookDeliveriesPage(
        items=[WebhookDeliveryPublic.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/v1/tracking-sync/failures",
    tags=["tracking write-back"],
    summary="Tracking pushes that failed or are being retried, newest first",
)
async def list_tracking_failures(
    user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None
) -> TrackingPushesPage:
    query = select(tracking_pushes).where(
        tracking_pushes.c.merchant_id == user.merchant_id,
        or_(
            tracking_pushes.c.status == "failed",
            (tracking_pushes.c.status == "pending") & (tracking_pushes.c.attempts > 0),
        ),
    )
    rows, next_cursor = await keyset_page(
        engine, query, tracking_pushes.c.created_at, tracking_pushes.c.id, limit, cursor, ascending=False
    )
    return TrackingPushesPage(
        items=[TrackingPushPublic.model_validate(dict(r._mapping)) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/v1/tracking-sync/failures/{push_id}/retry",
    status_code=202,
    tags=["tracking write-back"],
    summary="Try a failed tracking push again now",
)
async def retry_tracking_push(push_id: str, user: Merchant, engine: Engine) -> TrackingPushPublic:
    async with engine.begin() as conn:
        row = await handlers.retry_push(conn, user.merchant_id, push_id)
    return TrackingPushPublic.model_validate(dict(row._mapping))

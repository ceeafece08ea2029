"""Tracking write-back: performs the pushes that `on_order_shipped` queued.

A push row is claimed with FOR UPDATE SKIP LOCKED and stays locked during its one HTTP attempt, so two instances
never push it at once; the attempt and its outcome are committed together. A crash after the store accepted but
before our commit leaves the row pending: the next attempt finds the store's fulfillment by its tracking number
instead of creating a second one. Failures back off exponentially and end `failed` after the last attempt; the
merchant sees them and can retry.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from services.sync import handlers
from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.store_clients import Push, StoreAuthError, StoreError, StoreRejected, client_for
from services.sync.adapters.tables import stores, tracking_pushes
from services.sync.domain.store_settings import StoreSettings
from services.sync.domain.tracking import retry_delay, tracking_info
from services.sync.settings import SyncSettings
from shared.clock import utcnow
from shared.logging import get_logger

log = get_logger(__name__)


async def push_one(engine: AsyncEngine, box: SecretBox, settings: SyncSettings) -> bool:
    """Attempt the most overdue pending push; False when none is due."""
    async with engine.begin() as conn:
        push = (
            await conn.execute(
                select(tracking_pushes)
                .where(tracking_pushes.c.status == "pending", tracking_pushes.c.next_attempt_at <= func.now())
                .order_by(tracking_pushes.c.next_attempt_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if push is None:
            return False
        store = (await conn.execute(select(stores).where(stores.c.id == push.store_id))).one()
        attempts = push.attempts + 1
        entry: dict = {"at": utcnow().isoformat(), "attempt": attempts}
        final = attempts >= settings.writeback_max_attempts
        values: dict = {"attempts": attempts}
        if store.status != "connected":
            entry.update(outcome="error", error=f"the store is {store.status}: {store.status_reason}")
            final = True
        else:
            try:
                ref = await _perform(conn, box, settings, store, push)
            except StoreAuthError as exc:
                await handlers.mark_disconnected(conn, store.id, str(exc))
                entry.update(outcome="error", status_code=exc.status, error=str(exc))
                final = True
            except StoreRejected as exc:  # the store said no: retrying the same request will not help
                entry.update(outcome="error", status_code=exc.status, error=str(exc))
                final = True
            except StoreError as exc:
                entry.update(outcome="error", status_code=exc.status, error=str(exc))
            else:
                entry.update(outcome="done", external_ref=ref)
                values.update(status="done", external_ref=ref, done_at=utcnow(), last_error=None)
        if entry["outcome"] == "error":
            values.update(
                status="failed" if final else "pending",
                last_error=entry["error"],
                next_attempt_at=utcnow() + retry_delay(attempts, settings.writeback_backoff_seconds),
            )
            log.warning("writeback.attempt_failed", push_id=push.id, attempt=attempts, error=entry["error"])
        await conn.execute(
            update(tracking_pushes)
            .where(tracking_pushes.c.id == push.id)
            .values(
                attempt_log=tracking_pushes.c.attempt_log.op("||")(bindparam("entry", [entry], type_=JSONB)), **values
            )
        )
    return True


async def _perform(conn, box: SecretBox, settings: SyncSettings, store, push) -> str:
    store_settings = StoreSettings.model_validate(store.settings)
    previous_ref = None
    if push.reshipment_id and store.platform == "shopify":  # Shopify: move the first fulfillment's tracking
        previous_ref = (
            await conn.execute(
                select(tracking_pushes.c.external_ref)
                .where(
                    tracking_pushes.c.order_id == push.order_id,
                    tracking_pushes.c.status == "done",
                    tracking_pushes.c.id != push.id,
                )
                .order_by(tracking_pushes.c.done_at)
                .limit(1)
            )
        ).scalar()
    client = client_for(
        store.platform,
        store.api_url,
        json.loads(box.open(store.credentials)),
        timeout=settings.store_timeout_seconds,
        max_retries=0,  # the push row is the retry: each attempt is recorded there
        backoff_seconds=settings.store_backoff_seconds,
    )
    try:
        return await client.push_tracking(
            Push(
                external_order_id=push.external_order_id,
                tracking=tracking_info(push.carrier, push.tracking_number, store_settings),
                notify_customer=store_settings.notify_customer,
                previous_ref=previous_ref,
            )
        )
    finally:
        await client.aclose()


async def push_tracking(app: FastAPI) -> None:
    """The write-back loop."""
    settings: SyncSettings = app.state.settings
    while True:
        try:
            while await push_one(app.state.engine, app.state.secret_box, settings):
                pass
        except Exception:
            log.exception("writeback.loop_failed")
        await asyncio.sleep(settings.writeback_interval_seconds)

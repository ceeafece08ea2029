"""Sync jobs: read a store's orders page by page (the Sync Orders action, and the periodic reconciliation that finds
missed webhooks) through the same normalise-and-record path as the webhooks, so nothing is doubled.

One job per store at a time: a partial unique index allows one `running` row per store. Progress is committed
page by page, so it can be read while the job runs. The next page is fetched while the current one is recorded,
so under a rate limit the job takes about as long as the limit allows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.sync import handlers
from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.store_clients import OrdersPage, StoreAuthError, StoreError, client_for
from services.sync.adapters.tables import stores, sync_jobs
from services.sync.settings import SyncSettings
from shared.clock import utcnow
from shared.logging import get_logger

log = get_logger(__name__)

# Orders updated in the store while a sync ran may commit with a slightly older updated_at: read back a margin.
CURSOR_OVERLAP = timedelta(minutes=2)
PARALLEL_SCHEDULED_JOBS = 4


async def start_job(conn: AsyncConnection, store: Row, trigger: str, settings: SyncSettings) -> tuple[Row, bool]:
    """The new running job, or the one already running (False)."""
    await conn.execute(
        update(sync_jobs)
        .where(
            sync_jobs.c.store_id == store.id,
            sync_jobs.c.status == "running",
            sync_jobs.c.heartbeat_at < utcnow() - timedelta(seconds=settings.sync_job_stale_seconds),
        )
        .values(
            status="failed",
            finished_at=utcnow(),
            errors=sync_jobs.c.errors.op("||")(bindparam("note", ["interrupted: its process stopped"], type_=JSONB)),
        )
    )
    created = (
        await conn.execute(
            pg_insert(sync_jobs)
            .values(
                id=str(uuid.uuid4()),
                store_id=store.id,
                merchant_id=store.merchant_id,
                trigger=trigger,
                status="running",
            )
            # The predicate is a literal, as in the index: with a bound parameter PostgreSQL cannot infer the
            # partial index once it switches the prepared statement to a generic plan (after 5 executions).
            .on_conflict_do_nothing(index_elements=[sync_jobs.c.store_id], index_where=text("status = 'running'"))
            .returning(sync_jobs)
        )
    ).first()
    if created is not None:
        return created, True
    running = (
        await conn.execute(select(sync_jobs).where(sync_jobs.c.store_id == store.id, sync_jobs.c.status == "running"))
    ).one()
    return running, False


class JobRun:
    """Runs one job; counters live here and are written with each page."""

    def __init__(self, engine: AsyncEngine, box: SecretBox, settings: SyncSettings, job_id: str, store_id: str):
        self.engine, self.box, self.settings = engine, box, settings
        self.job_id, self.store_id = job_id, store_id
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.errors: list[str] = []
        self.pages = 0

    async def run(self) -> None:
        async with self.engine.connect() as conn:
            store = (await conn.execute(select(stores).where(stores.c.id == self.store_id))).one()
        client = client_for(
            store.platform,
            store.api_url,
            json.loads(self.box.open(store.credentials)),
            timeout=self.settings.store_timeout_seconds,
            max_retries=self.settings.store_max_retries,
            backoff_seconds=self.settings.store_backoff_seconds,
            on_retry=self.errors.append,
        )
        since = store.sync_cursor - CURSOR_OVERLAP if store.sync_cursor else None
        pages: asyncio.Queue[OrdersPage | BaseException | None] = asyncio.Queue(maxsize=1)

        async def fetch() -> None:
            cursor: Any = None
            try:
                while True:
                    page = await client.list_orders(updated_since=since, cursor=cursor)
                    await pages.put(page)
                    if page.next is None:
                        break
                    cursor = page.next
                await pages.put(None)
            except Exception as exc:  # handed to the recorder, which ends the job with it
                await pages.put(exc)

        fetcher = asyncio.create_task(fetch())
        newest = store.sync_cursor
        try:
            while (page := await pages.get()) is not None:
                if isinstance(page, BaseException):
                    raise page
                newest = max(filter(None, [newest, await self._record(page)]), default=None)
            await self._finish("succeeded", cursor=newest)
        except StoreAuthError as exc:
            self.errors.append(str(exc))
            async with self.engine.begin() as conn:
                await handlers.mark_disconnected(conn, self.store_id, str(exc))
            await self._finish("failed")
        except StoreError as exc:
            self.errors.append(str(exc))
            await self._finish("failed")
        except Exception as exc:
            log.exception("sync_job.crashed", job_id=self.job_id)
            self.errors.append(f"internal error: {type(exc).__name__}")
            await self._finish("failed")
        finally:
            fetcher.cancel()
            await client.aclose()

    async def _record(self, page: OrdersPage) -> datetime | None:
        newest = None
        async with self.engine.begin() as conn:
            store = (await conn.execute(select(stores).where(stores.c.id == self.store_id))).one()
            changes = []
            for data in page.orders:
                try:
                    changes.append((store, handlers.read_store_order(store, data, "sync")))
                except handlers.RejectedPayload as exc:
                    self.errors.append(f"order {data.get('id')}: {exc.detail}")
                    self.counts["skipped"] += 1
                    self.reasons["unusable payload"] += 1
            for result in await handlers.record_store_orders(conn, changes):
                kind, _, reason = result.outcome.partition(": ")
                if kind in ("skipped", "ignored"):
                    self.counts["skipped"] += 1
                    self.reasons[reason] += 1
                else:
                    self.counts[{"synced": "new", "stale": "unchanged"}.get(kind, kind)] += 1
                if result.store_updated_at and (newest is None or result.store_updated_at > newest):
                    newest = result.store_updated_at
            self.pages += 1
            await conn.execute(update(sync_jobs).where(sync_jobs.c.id == self.job_id).values(**self._progress()))
        return newest

    def _progress(self) -> dict:
        return {
            "pages": self.pages,
            "new": self.counts["new"],
            "updated": self.counts["updated"],
            "unchanged": self.counts["unchanged"],
            "skipped": self.counts["skipped"],
            "cancelled": self.counts["cancelled"],
            "skipped_reasons": dict(self.reasons),
            "errors": self.errors[-100:],
            "heartbeat_at": utcnow(),
        }

    async def _finish(self, status: str, cursor: datetime | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sync_jobs)
                .where(sync_jobs.c.id == self.job_id)
                .values(status=status, finished_at=utcnow(), **self._progress())
            )
            if cursor is not None:
                await conn.execute(update(stores).where(stores.c.id == self.store_id).values(sync_cursor=cursor))
        log.info("sync_job.finished", job_id=self.job_id, status=status, pages=self.pages, **dict(self.counts))


def launch(app: FastAPI, job: Row) -> None:
    """Run a job beside the requests; the task is kept so that it is not garbage-collected mid-run."""
    state = app.state
    task = asyncio.create_task(JobRun(state.engine, state.secret_box, state.settings, job.id, job.store_id).run())
    state.sync_tasks.add(task)
    task.add_done_callback(state.sync_tasks.discard)


async def periodic_sync(app: FastAPI) -> None:
    """The reconciliation loop: every connected store with auto-sync on is synced once per interval."""
    settings: SyncSettings = app.state.settings
    limit = asyncio.Semaphore(PARALLEL_SCHEDULED_JOBS)

    async def run(job: Row) -> None:
        async with limit:
            await JobRun(app.state.engine, app.state.secret_box, settings, job.id, job.store_id).run()

    while True:
        await asyncio.sleep(min(settings.sync_interval_seconds, 30.0))
        try:
            due_before = utcnow() - timedelta(seconds=settings.sync_interval_seconds)
            last = select(func.max(sync_jobs.c.started_at)).where(sync_jobs.c.store_id == stores.c.id).scalar_subquery()
            async with app.state.engine.begin() as conn:
                due = (
                    await conn.execute(
                        select(stores).where(
                            stores.c.status == "connected",
                            stores.c.settings["auto_sync"].as_boolean().is_not(False),
                            or_(last.is_(None), last < due_before),
                        )
                    )
                ).all()
                jobs = [
                    job
                    for store in due
                    for job, created in [await start_job(conn, store, "schedule", settings)]
                    if created
                ]
            await asyncio.gather(*(run(job) for job in jobs))
        except Exception:
            log.exception("sync.schedule_failed")

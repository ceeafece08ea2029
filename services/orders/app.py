import asyncio

from fastapi import FastAPI

from services.orders.adapters import repository
from services.orders.adapters.tables import metadata
from services.orders.api import catalog, packaging, routes
from services.orders.consumers import CONSUMES, HANDLERS
from services.orders.settings import get_settings
from shared.logging import get_logger
from shared.service import ServiceDefinition, create_app

log = get_logger(__name__)


async def tab_count_folder(app: FastAPI) -> None:
    """Folds tab-count changes into the counters, so that reading counts stays cheap at any volume."""
    while True:
        try:
            async with app.state.engine.begin() as conn:
                folded = await repository.fold_count_changes(conn)
        except Exception as exc:  # the database is away: the changes wait for the next try
            log.warning("orders.count_fold_failed", error=repr(exc))
            folded = 0
        if folded < 10_000:
            await asyncio.sleep(0.5)


def app() -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=get_settings(),
            metadata=metadata,
            routers=[routes.router, catalog.router, packaging.router],
            description=(
                "The merchant's Manage Orders page: tabs, timeline, after-sales; catalog, product connections,"
                " quotes and custom packaging."
            ),
            handlers=HANDLERS,
            consumes=CONSUMES,
            background=(tab_count_folder,),
        )
    )

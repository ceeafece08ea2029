from fastapi import FastAPI

from services.orders.adapters.tables import metadata
from services.orders.api import catalog, packaging, routes
from services.orders.consumers import CONSUMES, HANDLERS
from services.orders.settings import get_settings
from shared.service import ServiceDefinition, create_app


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
        )
    )

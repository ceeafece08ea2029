from fastapi import FastAPI

from services.orders.adapters.tables import metadata
from services.orders.api.routes import router
from services.orders.consumers import CONSUMES, HANDLERS
from services.orders.settings import get_settings
from shared.service import ServiceDefinition, create_app


def app() -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=get_settings(),
            metadata=metadata,
            routers=[router],
            description="The merchant's Manage Orders page: tabs, product connections, catalog, timeline.",
            handlers=HANDLERS,
            consumes=CONSUMES,
        )
    )

from fastapi import FastAPI

from services.tracking.adapters.tables import metadata
from services.tracking.api.routes import router
from services.tracking.consumers import CONSUMES, HANDLERS
from services.tracking.settings import get_settings
from shared.service import ServiceDefinition, create_app


def app() -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=get_settings(),
            metadata=metadata,
            routers=[router],
            description="Warehouse fulfillment, shipments, carrier tracking and customer emails.",
            handlers=HANDLERS,
            consumes=CONSUMES,
        )
    )

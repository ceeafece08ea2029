from fastapi import FastAPI

from services.checkout.adapters.tables import metadata
from services.checkout.api.routes import router
from services.checkout.consumers import CONSUMES, HANDLERS
from services.checkout.settings import get_settings
from shared.service import ServiceDefinition, create_app


def app() -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=get_settings(),
            metadata=metadata,
            routers=[router],
            description="Shipping, checkout, payments and the merchant balance.",
            handlers=HANDLERS,
            consumes=CONSUMES,
        )
    )

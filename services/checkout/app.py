from fastapi import FastAPI

from services.checkout.adapters.payment_provider import default_provider
from services.checkout.adapters.tables import metadata
from services.checkout.api import routes, shipping_routes, webhooks
from services.checkout.consumers import CONSUMES, HANDLERS
from services.checkout.settings import get_settings
from shared.service import ServiceDefinition, create_app


async def _start(app: FastAPI) -> None:
    app.state.payments = default_provider()


def app() -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=get_settings(),
            metadata=metadata,
            routers=[routes.router, shipping_routes.router, webhooks.router],
            description="Shipping methods and rules, checkout, payments (balance and card) and the merchant balance.",
            handlers=HANDLERS,
            consumes=CONSUMES,
            on_start=_start,
        )
    )

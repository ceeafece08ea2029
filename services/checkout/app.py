import asyncio

from fastapi import FastAPI

from services.checkout import handlers
from services.checkout.adapters.payment_provider import default_provider
from services.checkout.adapters.tables import metadata
from services.checkout.api import routes, shipping_routes, webhooks
from services.checkout.consumers import CONSUMES, HANDLERS
from services.checkout.settings import get_settings
from shared.logging import get_logger
from shared.service import ServiceDefinition, create_app

log = get_logger(__name__)


async def _start(app: FastAPI) -> None:
    app.state.payments = default_provider()


async def card_payment_reconciler(app: FastAPI) -> None:
    """Settles card payments whose webhook never came, by asking the provider (a webhook may be lost for good)."""
    settings, engine = app.state.settings, app.state.engine
    while True:
        await asyncio.sleep(settings.card_reconcile_interval_seconds)
        try:
            async with engine.connect() as conn:
                stale = await handlers.card_payments_to_reconcile(conn, settings.card_reconcile_after_seconds)
            for payment in stale:
                async with engine.begin() as conn:
                    outcome = await handlers.reconcile_card_payment(
                        conn, payment.provider_ref, payment.checkout_id, app.state.payments
                    )
                log.info("card.reconciled", provider_ref=payment.provider_ref, outcome=outcome)
        except Exception as exc:  # the provider or the database is away: the next round tries again
            log.warning("card.reconcile_failed", error=repr(exc))


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
            background=(card_payment_reconciler,),
        )
    )

import asyncio

from fastapi import FastAPI

from services.tracking import handlers
from services.tracking.adapters.mail import SmtpMailer
from services.tracking.adapters.tables import metadata
from services.tracking.api import public, routes, webhooks
from services.tracking.consumers import CONSUMES, HANDLERS
from services.tracking.settings import get_settings
from shared.logging import get_logger
from shared.service import ServiceDefinition, create_app

log = get_logger(__name__)


async def email_sender(app: FastAPI) -> None:
    """Sends the customers' shipping emails; several instances share the rows (FOR UPDATE SKIP LOCKED)."""
    settings, engine = app.state.settings, app.state.engine
    mailer = SmtpMailer(settings)
    while True:
        try:
            async with engine.begin() as conn:
                sent = await handlers.send_next_email(conn, mailer, settings)
        except Exception as exc:  # the database is away: wait, the rows are still there
            log.warning("email.sender_failed", error=repr(exc))
            sent = False
        if not sent:
            await asyncio.sleep(settings.email_poll_seconds)


def app() -> FastAPI:
    return create_app(
        ServiceDefinition(
            settings=get_settings(),
            metadata=metadata,
            routers=[routes.router, webhooks.router, public.router],
            description="Warehouse fulfillment, shipments, carrier tracking and customer emails.",
            handlers=HANDLERS,
            consumes=CONSUMES,
            background=(email_sender,),
        )
    )

from fastapi import FastAPI

from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.tables import metadata
from services.sync.api import routes, webhook_routes
from services.sync.consumers import CONSUMES, HANDLERS
from services.sync.polling import periodic_sync
from services.sync.settings import SyncSettings, get_settings
from services.sync.webhooks import Webhooks, apply_deliveries, prune_webhook_records_hourly
from services.sync.writeback import push_tracking
from shared.service import ServiceDefinition, create_app


async def _start(app: FastAPI) -> None:
    app.state.webhooks = Webhooks(app.state.engine, app.state.secret_box)


def app(settings: SyncSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    application = create_app(
        ServiceDefinition(
            settings=settings,
            metadata=metadata,
            routers=[webhook_routes.router, routes.router],
            description="Stores, store webhooks, polling and tracking write-back.",
            handlers=HANDLERS,
            consumes=CONSUMES,
            on_start=_start,
            background=(apply_deliveries, periodic_sync, push_tracking, prune_webhook_records_hourly),
        )
    )
    application.state.secret_box = SecretBox(settings.sync_secrets_key)
    application.state.sync_tasks = set()
    return application

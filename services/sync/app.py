from fastapi import FastAPI

from services.sync.adapters.secrets import SecretBox
from services.sync.adapters.tables import metadata
from services.sync.api.routes import router
from services.sync.settings import get_settings
from shared.service import ServiceDefinition, create_app


def app() -> FastAPI:
    settings = get_settings()
    application = create_app(
        ServiceDefinition(
            settings=settings,
            metadata=metadata,
            routers=[router],
            description="Stores, store webhooks, polling and tracking write-back.",
        )
    )
    application.state.secret_box = SecretBox(settings.sync_secrets_key)
    return application

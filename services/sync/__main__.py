from services.sync.settings import get_settings
from shared.cli import service_main

service_main("services.sync", get_settings, "services.sync.app:app")

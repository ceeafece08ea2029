from services.tracking.settings import get_settings
from shared.cli import service_main

service_main("services.tracking", get_settings, "services.tracking.app:app")

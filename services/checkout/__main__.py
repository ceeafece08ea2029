from services.checkout.settings import get_settings
from shared.cli import service_main

service_main("services.checkout", get_settings, "services.checkout.app:app")

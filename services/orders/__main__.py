from services.orders.settings import get_settings
from shared.cli import service_main

service_main("services.orders", get_settings, "services.orders.app:app")

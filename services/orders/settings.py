from functools import lru_cache

from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    db_schema: str = "orders"
    port: int = 8002


@lru_cache
def get_settings() -> OrdersSettings:
    return OrdersSettings()

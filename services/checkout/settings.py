from functools import lru_cache

from shared.settings import ServiceSettings


class CheckoutSettings(ServiceSettings):
    service_name: str = "checkout"
    db_schema: str = "checkout"
    port: int = 8003


@lru_cache
def get_settings() -> CheckoutSettings:
    return CheckoutSettings()

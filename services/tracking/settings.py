from functools import lru_cache

from shared.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    service_name: str = "tracking"
    db_schema: str = "tracking"
    port: int = 8004


@lru_cache
def get_settings() -> TrackingSettings:
    return TrackingSettings()

from functools import lru_cache

from pydantic import SecretStr, model_validator

from shared.settings import ServiceSettings

DEV_AFTERSHIP_SECRET = "dev-only-aftership-secret"  # noqa: S105 - refused outside development


class TrackingSettings(ServiceSettings):
    service_name: str = "tracking"
    db_schema: str = "tracking"
    port: int = 8004

    # The promise to merchants: paid orders leave the warehouse within this many hours.
    handling_time_hours: int = 72
    # A shipment with no carrier scan this many days after shipping is listed as an alert.
    no_scan_days: int = 5

    aftership_webhook_secret: SecretStr = SecretStr(DEV_AFTERSHIP_SECRET)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_use_tls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10
    email_from: str = "shipping@dropship.local"
    email_max_attempts: int = 6
    email_retry_base_seconds: float = 30
    email_poll_seconds: float = 1.0

    # The public tracking page: a token bucket per client IP.
    track_requests_per_second: float = 1.0
    track_burst: int = 10

    @model_validator(mode="after")
    def _no_placeholder_webhook_secret_in_production(self) -> "TrackingSettings":
        if (
            self.environment == "production"
            and self.aftership_webhook_secret.get_secret_value() == DEV_AFTERSHIP_SECRET
        ):
            raise ValueError("AFTERSHIP_WEBHOOK_SECRET must be set outside development")
        return self


@lru_cache
def get_settings() -> TrackingSettings:
    return TrackingSettings()

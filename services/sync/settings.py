from functools import lru_cache

from pydantic import SecretStr, model_validator

from shared.settings import ServiceSettings

DEV_SECRETS_KEY = "ZGV2LW9ubHktc3luYy1rZXktY2hhbmdlLW1lLTAwMDA="


class SyncSettings(ServiceSettings):
    service_name: str = "sync"
    db_schema: str = "sync"
    port: int = 8001
    # Fernet keys (url-safe base64, 32 bytes), comma-separated, newest first: old keys still decrypt.
    sync_secrets_key: SecretStr = SecretStr(DEV_SECRETS_KEY)
    # The URL stores reach this service at, for registering webhooks (e.g. https://sync.example.com).
    sync_public_url: str | None = None
    # Polling: every store with auto-sync on is reconciled this often (webhooks can be missed).
    sync_interval_seconds: float = 300.0
    # A running job whose heartbeat is older than this died with its process; another may start.
    sync_job_stale_seconds: float = 120.0
    store_timeout_seconds: float = 10.0
    store_max_retries: int = 4
    store_backoff_seconds: float = 1.0
    # Tracking write-back: how often due pushes are looked for, and the backoff between failed attempts.
    writeback_interval_seconds: float = 1.0
    writeback_backoff_seconds: float = 30.0
    writeback_max_attempts: int = 8
    # Applied webhook deliveries (the record of each and its dedupe key) and refused payloads are kept this long.
    # It must outlast the stores' redeliveries (Shopify retries a webhook for 48 hours) to recognise them.
    webhook_retention_days: float = 30.0

    @model_validator(mode="after")
    def _real_key_in_production(self) -> "SyncSettings":
        if not self.sync_secrets_key.get_secret_value() and self.environment != "production":
            self.sync_secrets_key = SecretStr(DEV_SECRETS_KEY)
        if self.environment == "production" and self.sync_secrets_key.get_secret_value() == DEV_SECRETS_KEY:
            raise ValueError("SYNC_SECRETS_KEY must be set outside development")
        return self


@lru_cache
def get_settings() -> SyncSettings:
    return SyncSettings()

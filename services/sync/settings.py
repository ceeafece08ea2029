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

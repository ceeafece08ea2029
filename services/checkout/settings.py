from decimal import Decimal
from functools import lru_cache

from pydantic import SecretStr, model_validator

from shared.settings import ServiceSettings

DEV_STRIPE_KEY = "sk_test_dev_only"
DEV_STRIPE_WEBHOOK_SECRET = "whsec_dev_only"  # noqa: S105 - refused in production


class CheckoutSettings(ServiceSettings):
    service_name: str = "checkout"
    db_schema: str = "checkout"
    port: int = 8003

    order_fee: Decimal = Decimal("0.00")  # the agent's service fee per order, in the order's currency
    stripe_api_base: str = "http://127.0.0.1:12111"
    stripe_secret_key: SecretStr = SecretStr(DEV_STRIPE_KEY)
    stripe_webhook_secret: SecretStr = SecretStr(DEV_STRIPE_WEBHOOK_SECRET)
    # A card payment whose webhook has not come after this long is looked up at the provider.
    card_reconcile_after_seconds: float = 600
    card_reconcile_interval_seconds: float = 60

    @model_validator(mode="after")
    def _real_stripe_secrets_in_production(self) -> "CheckoutSettings":
        if self.environment == "production" and (
            self.stripe_secret_key.get_secret_value() == DEV_STRIPE_KEY
            or self.stripe_webhook_secret.get_secret_value() == DEV_STRIPE_WEBHOOK_SECRET
        ):
            raise ValueError("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set outside development")
        return self


@lru_cache
def get_settings() -> CheckoutSettings:
    return CheckoutSettings()

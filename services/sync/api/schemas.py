from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator


class StoreCreate(BaseModel):
    platform: Literal["shopify", "woocommerce"]
    shop_domain: str = Field(
        min_length=3, max_length=255, description="name.myshopify.com, or the WooCommerce site host"
    )
    name: str = Field(min_length=1, max_length=200, description="the store name customers see")
    access_token: SecretStr | None = Field(default=None, description="Shopify Admin API access token")
    consumer_key: SecretStr | None = Field(default=None, description="WooCommerce REST consumer key")
    consumer_secret: SecretStr | None = Field(default=None, description="WooCommerce REST consumer secret")
    webhook_secret: SecretStr = Field(min_length=8, description="the key the store signs webhooks with")

    @field_validator("shop_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if "/" in value or " " in value:
            raise ValueError("give the bare host, e.g. name.myshopify.com")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> StoreCreate:
        if self.platform == "shopify" and self.access_token is None:
            raise ValueError("a Shopify store needs access_token")
        if self.platform == "woocommerce" and (self.consumer_key is None or self.consumer_secret is None):
            raise ValueError("a WooCommerce store needs consumer_key and consumer_secret")
        return self

    def plain(self) -> dict:
        """The values with secrets revealed, for encryption and nothing else."""
        data = self.model_dump()
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in data.items()}


class StorePublic(BaseModel):
    """A store as the API shows it: credentials and secrets are never returned."""

    id: str
    platform: str
    shop_domain: str
    name: str
    status: str
    status_reason: str | None
    created_at: datetime


class StoresPage(BaseModel):
    items: list[StorePublic]
    next_cursor: str | None = None


class WebhookAccepted(BaseModel):
    outcome: str
    order_id: str | None = None

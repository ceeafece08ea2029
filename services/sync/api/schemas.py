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
    api_url: str | None = Field(
        default=None, max_length=500, description="where the store's API answers, when not https://{shop_domain}"
    )

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


class StoreUpdate(BaseModel):
    """New credentials reconnect a disconnected store."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    api_url: str | None = Field(default=None, max_length=500)
    access_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    webhook_secret: SecretStr | None = Field(default=None, min_length=8)

    def plain(self) -> dict:
        data = self.model_dump(exclude_none=True)
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in data.items()}


class StorePublic(BaseModel):
    """A store as the API shows it: credentials and secrets are never returned."""

    id: str
    platform: str
    shop_domain: str
    api_url: str
    name: str
    status: str
    status_reason: str | None
    sync_cursor: datetime | None = Field(description="orders updated before this were reconciled by a sync")
    created_at: datetime


class StoresPage(BaseModel):
    items: list[StorePublic]
    next_cursor: str | None = None


class WebhookAccepted(BaseModel):
    outcome: str = Field(
        description="accepted (kept, applied within moments: see the store's deliveries), duplicate (this delivery"
        " was accepted before), ping, ignored topic ..., store disconnected"
    )
    order_id: str | None = Field(default=None, description="our id of the order the delivery is about")


class WebhookDeliveryPublic(BaseModel):
    delivery_key: str = Field(description="X-Shopify-Webhook-Id, or the WooCommerce order id and modification time")
    topic: str
    external_order_id: str | None
    outcome: str | None = Field(
        description="null while waiting to be applied; then synced, updated, stale: ..., skipped: ..., cancelled,"
        " failed: ..."
    )
    received_at: datetime
    applied_at: datetime | None


class WebhookDeliveriesPage(BaseModel):
    items: list[WebhookDeliveryPublic]
    next_cursor: str | None = None


class WebhooksRegistered(BaseModel):
    address: str
    topics: list[str]


class SyncJobPublic(BaseModel):
    id: str
    store_id: str
    trigger: Literal["manual", "schedule"]
    status: Literal["running", "succeeded", "failed"]
    pages: int
    new: int
    updated: int
    unchanged: int
    skipped: int
    cancelled: int
    skipped_reasons: dict[str, int] = Field(description="why orders were skipped, with how many each")
    errors: list[str] = Field(description="retries and failures, newest last")
    started_at: datetime
    finished_at: datetime | None


class SyncJobsPage(BaseModel):
    items: list[SyncJobPublic]
    next_cursor: str | None = None


class WebhookFailurePublic(BaseModel):
    id: str
    store_id: str
    topic: str
    field: str
    error: str
    payload: str = Field(description="the raw body as received")
    received_at: datetime


class WebhookFailuresPage(BaseModel):
    items: list[WebhookFailurePublic]
    next_cursor: str | None = None


class TrackingPushPublic(BaseModel):
    id: str
    store_id: str
    order_id: str
    external_order_id: str
    shipment_id: str
    reshipment_id: str | None
    carrier: str
    tracking_number: str
    status: Literal["pending", "done", "failed"]
    attempts: int
    attempt_log: list[dict]
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    done_at: datetime | None


class TrackingPushesPage(BaseModel):
    items: list[TrackingPushPublic]
    next_cursor: str | None = None

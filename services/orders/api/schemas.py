from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.events import Address
from shared.money import Amount, Currency, Money


class OrderLinePublic(BaseModel):
    external_line_id: str
    external_product_id: str | None
    external_variant_id: str | None
    sku: str | None
    title: str
    quantity: int
    unit_price: Money
    connected: bool
    catalog_variant_id: str | None = None
    catalog_sku: str | None = None
    unit_cost: Money | None = None
    quantity_ratio: int | None = None


class OrderSummary(BaseModel):
    id: str
    store_id: str
    external_order_id: str
    order_name: str
    status: str
    status_reason: str | None
    total_price: Money
    country_code: str
    created_at: datetime


class TimelineEntryPublic(BaseModel):
    kind: str
    detail: str
    actor: str
    at: datetime


class OrderDetail(OrderSummary):
    customer_email: str | None
    customer_locale: str | None
    shipping_address: Address
    lines: list[OrderLinePublic]
    product_cost: Money | None = Field(description="catalog cost of the connected lines")
    paid_amount: Money | None
    flags: list[str]
    timeline: list[TimelineEntryPublic]


class OrdersPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled by the merchant", max_length=500)


class CatalogVariantCreate(BaseModel):
    sku: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    unit_cost: Amount = Field(ge=0)
    currency: Currency = "USD"
    weight_grams: int = Field(ge=0, le=100_000)


class CatalogVariantPublic(CatalogVariantCreate):
    id: str
    status: str


class ProductConnectionCreate(BaseModel):
    store_id: str = Field(min_length=1)
    external_product_id: str = Field(min_length=1)
    external_variant_id: str = Field(default="", description="empty: every variant of the product")
    catalog_variant_id: str
    quantity_ratio: int = Field(default=1, ge=1, le=1000)


class ProductConnectionPublic(ProductConnectionCreate):
    id: str
    created_at: datetime


class ConnectionsPage(BaseModel):
    items: list[ProductConnectionPublic]
    next_cursor: str | None = None

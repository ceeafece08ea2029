from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.events import Address, ShippingChoice
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
    customer_name: str
    customer_email: str | None
    flags: list[str]
    created_at: datetime


class TimelineEntryPublic(BaseModel):
    kind: str
    detail: str
    actor: str = Field(description="who: user:<id>, or which event: event:<type>:<event id>")
    at: datetime


class PackagingPublic(BaseModel):
    private_product_id: str
    name: str
    kind: str
    catalog_variant_id: str
    sku: str
    unit_cost: Money
    unit_weight_grams: int
    quantity: int


class ShipmentPublic(BaseModel):
    shipment_id: str
    carrier: str
    tracking_number: str
    tracking_url: str
    shipped_at: datetime


class AfterSalesCasePublic(BaseModel):
    id: str
    order_id: str
    kind: Literal["refund", "reshipment"]
    state: Literal["requested", "approved", "rejected", "refunded", "reshipped"]
    reason: str
    external_line_ids: list[str]
    amount: Money | None = None
    requested_by: str
    rejection_reason: str | None = None
    failure_reason: str | None = Field(default=None, description="why the last refund attempt failed")
    shipment: ShipmentPublic | None = Field(default=None, description="the reshipment's new tracking")


class Costs(BaseModel):
    products: Money | None = Field(description="catalog cost of the connected lines")
    packaging: Money | None


class OrderDetail(OrderSummary):
    customer_locale: str | None
    store_name: str
    shipping_address: Address
    connection_state: Literal["none", "partial", "all"]
    lines: list[OrderLinePublic]
    costs: Costs
    packaging: list[PackagingPublic]
    paid_amount: Money | None
    refunded_amount: Money | None
    shipping: ShippingChoice | None
    shipment: ShipmentPublic | None
    resume_status: str | None = Field(description="where the order returns when its open after-sales case ends")
    after_sales: list[AfterSalesCasePublic]
    timeline: list[TimelineEntryPublic]


class OrdersPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled by the merchant", max_length=500)


class AddressUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    address1: str = Field(min_length=1, max_length=300)
    address2: str | None = Field(default=None, max_length=300)
    city: str = Field(min_length=1, max_length=100)
    province: str | None = Field(default=None, max_length=100)
    province_code: str | None = Field(default=None, max_length=10)
    zip: str | None = Field(default=None, pattern=r"^[A-Za-z0-9 -]{2,12}$")
    country_code: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")


class RefundCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
    external_line_ids: list[str] = Field(default=[], description="the lines concerned; empty: the whole order")
    amount: Money


class ReshipmentCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
    external_line_ids: list[str] = Field(min_length=1, description="the lines to send again")


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class CasesPage(BaseModel):
    items: list[AfterSalesCasePublic]
    next_cursor: str | None


class CatalogProductCreate(BaseModel):
    title: str = Field(min_length=1, max_length=300)


class CatalogProductPublic(CatalogProductCreate):
    id: str
    status: str
    created_at: datetime


class CatalogProductsPage(BaseModel):
    items: list[CatalogProductPublic]
    next_cursor: str | None = None


class CatalogVariantCreate(BaseModel):
    product_id: str | None = None
    sku: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    unit_cost: Amount = Field(ge=0)
    currency: Currency = "USD"
    weight_grams: int = Field(ge=0, le=100_000)


class CatalogVariantUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    unit_cost: Amount | None = Field(default=None, ge=0)
    weight_grams: int | None = Field(default=None, ge=0, le=100_000)
    status: Literal["active", "inactive"] | None = None


class CatalogVariantPublic(CatalogVariantCreate):
    id: str
    status: str


class CatalogVariantsPage(BaseModel):
    items: list[CatalogVariantPublic]
    next_cursor: str | None = None


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


class OrderSettings(BaseModel):
    auto_connect_by_sku: bool = Field(
        description="connect a synced line by itself when its SKU is a catalog variant's SKU"
    )


class QuoteCreate(BaseModel):
    store_id: str = Field(min_length=1)
    external_product_id: str = Field(min_length=1)
    external_variant_id: str = ""
    title: str = Field(min_length=1, max_length=300)
    sku: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


class QuotePublic(QuoteCreate):
    id: str
    merchant_id: str
    status: Literal["to_claim", "processing", "finished", "declined"]
    claimed_by: str | None
    catalog_variant_id: str | None
    quantity_ratio: int | None
    decline_reason: str | None
    connection_id: str | None
    created_at: datetime
    updated_at: datetime


class QuotesPage(BaseModel):
    items: list[QuotePublic]
    next_cursor: str | None


class QuoteAnswer(BaseModel):
    catalog_variant_id: str
    quantity_ratio: int = Field(default=1, ge=1, le=1000)


class PrivateProductCreate(BaseModel):
    kind: Literal["packaging", "card"]
    name: str = Field(min_length=1, max_length=200)
    catalog_variant_id: str = Field(description="the catalog variant that gives its cost and weight")
    card_message: str | None = Field(default=None, max_length=1000)


class PrivateProductPublic(PrivateProductCreate):
    id: str
    status: str
    created_at: datetime


class PrivateProductsPage(BaseModel):
    items: list[PrivateProductPublic]
    next_cursor: str | None


class PackagingRuleCreate(BaseModel):
    store_id: str = Field(min_length=1)
    external_product_id: str | None = Field(default=None, description="null: every order of the store")
    private_product_id: str
    quantity: int = Field(default=1, ge=1, le=100)
    enabled: bool = True


class PackagingRulePublic(PackagingRuleCreate):
    id: str
    created_at: datetime


class PackagingRulesPage(BaseModel):
    items: list[PackagingRulePublic]
    next_cursor: str | None

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from shared.events import Address, CarrierStatus, ShippingChoice

TrackingNumber = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
Carrier = Annotated[str, Field(min_length=1, max_length=100, examples=["YunExpress"])]


class LinePublic(BaseModel):
    sku: str
    title: str
    quantity: int


class FulfillmentPublic(BaseModel):
    id: str
    order_id: str
    merchant_id: str
    step: str
    order_name: str
    store_name: str
    lines: list[LinePublic]
    packaging: list[LinePublic] = Field(description="the merchant's packaging items and cards")
    shipping_address: Address
    shipping: ShippingChoice | None
    shipping_method: str | None
    carrier: str | None
    tracking_number: str | None
    reshipment_id: str | None
    reship_of: str | None = Field(description="the fulfillment this one sends again")
    paid_at: datetime


class HistoryEntryPublic(BaseModel):
    step: str
    detail: str
    actor: str
    at: datetime


class FulfillmentDetail(FulfillmentPublic):
    history: list[HistoryEntryPublic]


class FulfillmentsPage(BaseModel):
    items: list[FulfillmentPublic]
    next_cursor: str | None


class QualityCheck(BaseModel):
    passed: bool
    notes: str = Field(default="", max_length=2000)


class Label(BaseModel):
    carrier: Carrier
    tracking_number: TrackingNumber


class StepAction(StrEnum):
    PURCHASE = "purchase"
    QUALITY_CHECK = "quality-check"
    PACK = "pack"
    LABEL = "label"
    SHIP = "ship"


class BulkItem(BaseModel):
    fulfillment_id: str
    passed: bool | None = Field(default=None, description="quality-check: required")
    notes: str = Field(default="", max_length=2000)
    carrier: Carrier | None = Field(default=None, description="label: required")
    tracking_number: TrackingNumber | None = Field(default=None, description="label: required")


class BulkRequest(BaseModel):
    items: list[BulkItem] = Field(min_length=1, max_length=250)


class BulkResult(BaseModel):
    fulfillment_id: str
    status: int = Field(description="what the single action would have answered: 200, 404, 409 or 422")
    step: str | None = Field(description="the step after the action, or the current one when it was refused")
    detail: str | None = None


class BulkResponse(BaseModel):
    items: list[BulkResult]


class ShipmentPublic(BaseModel):
    id: str
    fulfillment_id: str
    order_id: str
    reshipment_id: str | None
    carrier: str
    tracking_number: str
    tracking_url: str
    destination_country: str
    items: list[LinePublic]
    shipped_at: datetime
    status: str
    status_at: datetime | None


class CheckpointPublic(BaseModel):
    at: datetime
    status: str
    message: str
    location: str
    country: str


class ShipmentDetail(ShipmentPublic):
    timeline: list[CheckpointPublic]


class ShipmentsPage(BaseModel):
    items: list[ShipmentPublic]
    next_cursor: str | None


class EmailFailure(BaseModel):
    id: str
    shipment_id: str
    merchant_id: str
    recipient: str | None
    status: Literal["pending", "failed"] = Field(description="pending: will be tried again")
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime


class EmailFailuresPage(BaseModel):
    items: list[EmailFailure]
    next_cursor: str | None


class UnmatchedEvent(BaseModel):
    event_id: str
    tracking_number: str
    body: dict
    received_at: datetime


class UnmatchedEventsPage(BaseModel):
    items: list[UnmatchedEvent]
    next_cursor: str | None


# --- the tracking aggregator's webhook (AfterShip-style) -------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """Carriers often send local scan times without an offset: taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class AfterShipCheckpoint(BaseModel):
    checkpoint_time: Annotated[datetime, AfterValidator(_utc)]
    tag: CarrierStatus
    message: str = Field(default="", max_length=2000)
    location: str | None = Field(default=None, max_length=500)
    country_iso3: str | None = Field(default=None, max_length=3)


class AfterShipTracking(BaseModel):
    tracking_number: TrackingNumber
    tag: CarrierStatus
    slug: str | None = None
    checkpoints: list[AfterShipCheckpoint] = Field(default=[], max_length=500)


class AfterShipWebhook(BaseModel):
    ts: int = Field(description="when the aggregator sent it, Unix seconds")
    event: str
    event_id: str = Field(min_length=1, max_length=200)
    msg: AfterShipTracking


class WebhookOutcome(BaseModel):
    outcome: Literal["recorded", "duplicate"]


# --- the public tracking page: no personal data beyond the destination country ---------------------------------


class PublicCheckpoint(BaseModel):
    at: datetime
    status: str
    country: str = Field(description="where the scan happened (ISO 3166-1 alpha-3 as the carrier sends it)")


class PublicTracking(BaseModel):
    tracking_number: str
    carrier: str
    tracking_url: str
    status: str
    shipped_at: datetime
    destination_country: str
    timeline: list[PublicCheckpoint]

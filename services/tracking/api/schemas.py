from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FulfillmentPublic(BaseModel):
    id: str
    order_id: str
    merchant_id: str
    step: str
    order_name: str
    shipping_method: str | None
    carrier: str | None
    tracking_number: str | None
    paid_at: datetime


class FulfillmentsPage(BaseModel):
    items: list[FulfillmentPublic]
    next_cursor: str | None


class QualityCheck(BaseModel):
    passed: bool
    notes: str = Field(default="", max_length=2000)


class Label(BaseModel):
    carrier: str = Field(min_length=1, max_length=100, examples=["YunExpress"])
    tracking_number: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class ShipmentPublic(BaseModel):
    id: str
    fulfillment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    tracking_url: str
    shipped_at: datetime

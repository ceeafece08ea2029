"""The integration-event catalog: the contract between the four services.

Every event is an envelope (`event_id`, `event_type`, `version`, `occurred_at`, `merchant_id`, `order_id` — the
Kafka key —, `correlation_id`) around a typed payload. A change that breaks a payload gets a new `version`.
Domain events stay inside a service; only these cross the broker.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from shared import topics
from shared.clock import utcnow
from shared.logging import correlation_id
from shared.money import Money


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Address(Model):
    name: str = ""
    company: str | None = None
    address1: str = ""
    address2: str | None = None
    city: str = ""
    province: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str = Field(default="", description="ISO 3166-1 alpha-2")
    phone: str | None = None


class IntegrationEvent(Model):
    topic: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    merchant_id: str
    order_id: str = Field(description="The aggregate id; also the Kafka message key")
    correlation_id: str = Field(default_factory=correlation_id)

    def key(self) -> bytes:
        return self.order_id.encode()


# --- sync -> ---------------------------------------------------------------------------------------------------


class StoreOrderLine(Model):
    external_line_id: str
    external_product_id: str | None
    external_variant_id: str | None
    sku: str | None = None
    title: str = ""
    quantity: int = Field(gt=0)
    unit_price: Money


class StoreOrder(Model):
    """A store's order, normalised from Shopify or WooCommerce."""

    store_id: str
    store_name: str = ""
    platform: Literal["shopify", "woocommerce"]
    external_order_id: str
    order_name: str
    currency: str
    total_price: Money
    financial_status: str
    fulfillment_status: str | None = None
    customer_email: str | None = None
    customer_locale: str | None = None
    shipping_address: Address
    lines: list[StoreOrderLine]
    store_created_at: datetime
    store_updated_at: datetime
    tags: list[str] = []
    customer_notified_by_store: bool = Field(
        default=False,
        description="the store's setting when synced: the store platform emails the customer the tracking itself",
    )


class OrderSyncedPayload(Model):
    order: StoreOrder
    is_update: bool = False


class OrderSynced(IntegrationEvent):
    topic: ClassVar[str] = topics.STORE_ORDERS
    event_type: Literal["OrderSynced"] = "OrderSynced"
    payload: OrderSyncedPayload


class StoreOrderCancelledPayload(Model):
    store_id: str
    external_order_id: str
    reason: str | None = None
    cancelled_at: AwareDatetime


class StoreOrderCancelled(IntegrationEvent):
    topic: ClassVar[str] = topics.STORE_ORDERS
    event_type: Literal["StoreOrderCancelled"] = "StoreOrderCancelled"
    payload: StoreOrderCancelledPayload


# --- orders -> -------------------------------------------------------------------------------------------------

OrderStatus = Literal["quoting", "to_order", "pending", "processing", "shipped", "refunds", "resent", "cancelled"]


class OrderStatusChangedPayload(Model):
    from_status: OrderStatus | None
    to_status: OrderStatus
    reason: str | None = None


class OrderStatusChanged(IntegrationEvent):
    """An order's move between tabs, one per change that commits: from the status before the change to the one after
    it (the steps between are in its timeline). A move into To Order is told by OrderReadyForCheckout instead."""

    topic: ClassVar[str] = topics.ORDERS
    event_type: Literal["OrderStatusChanged"] = "OrderStatusChanged"
    payload: OrderStatusChangedPayload


class PayableLine(Model):
    catalog_variant_id: str
    sku: str
    title: str = ""
    quantity: int = Field(gt=0)
    unit_cost: Money
    unit_weight_grams: int = Field(ge=0)


class ShippingChoice(Model):
    """The shipping method an order is paid with, and why it was chosen."""

    method_id: str
    name: str = Field(examples=["YunExpress Global Direct"])
    carrier: str = Field(description="the carrier name the stores accept", examples=["YunExpress"])
    price: Money
    delivery_days_min: int = Field(ge=0)
    delivery_days_max: int = Field(ge=0)
    rule_id: str | None = None
    rule_reason: str | None = None


class PayableOrderPayload(Model):
    """What checkout and tracking need to price, pay, pack and announce an order without asking orders."""

    store_id: str
    store_name: str = ""
    order_name: str
    currency: str = Field(description="the currency the agent charges in (the catalog's)")
    lines: list[PayableLine]
    packaging: list[PayableLine] = Field(default=[], description="the merchant's packaging items and cards")
    shipping_address: Address
    customer_email: str | None = None
    customer_locale: str | None = None
    customer_notified_by_store: bool = False
    store_total: Money | None = Field(default=None, description="what the end customer paid the store")


class OrderReadyForCheckout(IntegrationEvent):
    """Sent when an order enters To Order (the one event of that move), and again when its lines, address or
    packaging change there."""

    topic: ClassVar[str] = topics.ORDERS
    event_type: Literal["OrderReadyForCheckout"] = "OrderReadyForCheckout"
    payload: PayableOrderPayload


class RefundApprovedPayload(Model):
    refund_id: str
    amount: Money
    reason: str
    external_line_ids: list[str] = []


class RefundApproved(IntegrationEvent):
    """Ops approved a refund; checkout pays it back the way the order was paid."""

    topic: ClassVar[str] = topics.AFTER_SALES
    event_type: Literal["RefundApproved"] = "RefundApproved"
    payload: RefundApprovedPayload


class ReshipmentApprovedPayload(Model):
    reshipment_id: str
    reason: str
    order: PayableOrderPayload = Field(description="the lines to send again and where")
    shipping: ShippingChoice | None = None


class ReshipmentApproved(IntegrationEvent):
    """Ops approved a reshipment; tracking opens a new fulfillment linked to the order's first one."""

    topic: ClassVar[str] = topics.AFTER_SALES
    event_type: Literal["ReshipmentApproved"] = "ReshipmentApproved"
    payload: ReshipmentApprovedPayload


# --- checkout -> -----------------------------------------------------------------------------------------------


class PaymentPayload(Model):
    payment_id: str
    method: Literal["balance", "card"]
    amount: Money


class PaymentStarted(IntegrationEvent):
    topic: ClassVar[str] = topics.PAYMENTS
    event_type: Literal["PaymentStarted"] = "PaymentStarted"
    payload: PaymentPayload


class OrderPaidPayload(PaymentPayload):
    shipping: ShippingChoice | None = None
    order: PayableOrderPayload


class OrderPaid(IntegrationEvent):
    topic: ClassVar[str] = topics.PAYMENTS
    event_type: Literal["OrderPaid"] = "OrderPaid"
    payload: OrderPaidPayload


class PaymentFailedPayload(PaymentPayload):
    reason: str


class PaymentFailed(IntegrationEvent):
    topic: ClassVar[str] = topics.PAYMENTS
    event_type: Literal["PaymentFailed"] = "PaymentFailed"
    payload: PaymentFailedPayload


class RefundCompletedPayload(Model):
    refund_id: str
    amount: Money
    method: Literal["balance", "card"]


class RefundCompleted(IntegrationEvent):
    topic: ClassVar[str] = topics.PAYMENTS
    event_type: Literal["RefundCompleted"] = "RefundCompleted"
    payload: RefundCompletedPayload


class RefundFailedPayload(Model):
    refund_id: str
    reason: str


class RefundFailed(IntegrationEvent):
    topic: ClassVar[str] = topics.PAYMENTS
    event_type: Literal["RefundFailed"] = "RefundFailed"
    payload: RefundFailedPayload


# --- tracking -> -----------------------------------------------------------------------------------------------


class OrderShippedPayload(Model):
    shipment_id: str
    fulfillment_id: str
    carrier: str
    tracking_number: str
    tracking_url: str
    shipped_at: AwareDatetime
    reshipment_id: str | None = Field(default=None, description="set when this shipment is a reshipment")
    store_id: str = ""


class OrderShipped(IntegrationEvent):
    """A parcel left with the carrier; a reshipment's parcel too (then `reshipment_id` is set)."""

    topic: ClassVar[str] = topics.FULFILLMENT
    event_type: Literal["OrderShipped"] = "OrderShipped"
    payload: OrderShippedPayload


CarrierStatus = Literal[
    "Pending",
    "InfoReceived",
    "InTransit",
    "OutForDelivery",
    "AttemptFail",
    "Delivered",
    "AvailableForPickup",
    "Exception",
    "Expired",
]


class ShipmentStatusChangedPayload(Model):
    shipment_id: str
    tracking_number: str
    status: CarrierStatus
    checkpoint_at: AwareDatetime
    message: str = ""


class ShipmentStatusChanged(IntegrationEvent):
    """The carrier reported a status that matters to others (delivered, exception)."""

    topic: ClassVar[str] = topics.FULFILLMENT
    event_type: Literal["ShipmentStatusChanged"] = "ShipmentStatusChanged"
    payload: ShipmentStatusChangedPayload


CATALOG: tuple[type[IntegrationEvent], ...] = (
    OrderSynced,
    StoreOrderCancelled,
    OrderStatusChanged,
    OrderReadyForCheckout,
    RefundApproved,
    ReshipmentApproved,
    PaymentStarted,
    OrderPaid,
    PaymentFailed,
    RefundCompleted,
    RefundFailed,
    OrderShipped,
    ShipmentStatusChanged,
)

AnyEvent = Annotated[
    OrderSynced
    | StoreOrderCancelled
    | OrderStatusChanged
    | OrderReadyForCheckout
    | RefundApproved
    | ReshipmentApproved
    | PaymentStarted
    | OrderPaid
    | PaymentFailed
    | RefundCompleted
    | RefundFailed
    | OrderShipped
    | ShipmentStatusChanged,
    Field(discriminator="event_type"),
]
_any_event: TypeAdapter[IntegrationEvent] = TypeAdapter(AnyEvent)


def parse_event(raw: bytes | str) -> IntegrationEvent:
    """Parse a message value into its event class; raises pydantic.ValidationError on a malformed event."""
    return _any_event.validate_json(raw)

from sqlalchemy import BigInteger, Column, ForeignKey, Identity, Index, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from services.tracking.settings import TrackingSettings
from shared.db import Timestamp, common_tables, service_metadata

metadata = service_metadata(TrackingSettings.model_fields["db_schema"].default)

fulfillments = Table(
    "fulfillments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("order_id", Text, nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("payment_id", Text, comment="one fulfillment per paid order: unique with order_id; null for a reshipment"),
    Column("reshipment_id", Text, unique=True, comment="one fulfillment per approved reshipment"),
    Column("reship_of", Text, ForeignKey("tracking.fulfillments.id"), comment="the order's first fulfillment"),
    Column("step", Text, nullable=False),
    Column("order", JSONB, nullable=False, comment="lines, packaging, address, customer as paid"),
    Column("shipping", JSONB, comment="the shipping choice paid for"),
    Column("shipping_method", Text),
    Column("carrier", Text),
    Column("tracking_number", Text),
    Column("version", Integer, nullable=False, server_default="0"),
    Timestamp("paid_at", nullable=False, comment="for a reshipment: when it was approved"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Index(None, "order_id", "payment_id", unique=True),
    Index(None, "step", "paid_at"),
)

fulfillment_history = Table(
    "fulfillment_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("fulfillment_id", Text, ForeignKey("tracking.fulfillments.id"), nullable=False, index=True),
    Column("step", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Timestamp("at", nullable=False, server_default=func.now()),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("fulfillment_id", Text, ForeignKey("tracking.fulfillments.id"), nullable=False, unique=True),
    Column("order_id", Text, nullable=False, index=True),
    Column("merchant_id", Text, nullable=False),
    Column("reshipment_id", Text),
    Column("carrier", Text, nullable=False),
    Column("tracking_number", Text, nullable=False, unique=True),
    Column("tracking_url", Text, nullable=False),
    Column("destination_country", Text, nullable=False, server_default=""),
    Column("items", JSONB, nullable=False, server_default="[]", comment="sku, title, quantity per line"),
    Timestamp("shipped_at", nullable=False),
    Column("status", Text, nullable=False, server_default="Pending", comment="the latest carrier scan's tag"),
    Timestamp("status_at", comment="the latest carrier scan's time; null until the first scan"),
    Index(None, "shipped_at"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("shipment_id", Text, ForeignKey("tracking.shipments.id"), nullable=False),
    Timestamp("checkpoint_at", nullable=False),
    Column("status", Text, nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("location", Text, nullable=False, server_default=""),
    Column("country", Text, nullable=False, server_default=""),
    # Aggregators repeat every earlier checkpoint in each webhook: one row per scan.
    Index(None, "shipment_id", "checkpoint_at", "status", "message", unique=True),
)

carrier_events = Table(
    "carrier_events",
    metadata,
    Column("event_id", Text, primary_key=True, comment="the aggregator's id: a redelivery is a no-op"),
    Column("tracking_number", Text, nullable=False),
    Column("shipment_id", Text, ForeignKey("tracking.shipments.id"), comment="null: no shipment had the number"),
    Column("body", JSONB, nullable=False),
    Timestamp("received_at", nullable=False, server_default=func.now()),
    Index(None, "shipment_id", "received_at"),
)

emails = Table(
    "emails",
    metadata,
    Column("id", Text, primary_key=True),
    Column("shipment_id", Text, ForeignKey("tracking.shipments.id"), nullable=False, unique=True),
    Column("merchant_id", Text, nullable=False),
    Column("recipient", Text),
    Column("language", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text_body", Text, nullable=False),
    Column("html_body", Text, nullable=False),
    Column("from_name", Text, nullable=False, server_default="", comment="the merchant's store name"),
    Column("status", Text, nullable=False, comment="pending, sent, failed, skipped"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, comment="why it failed, or why it was skipped"),
    Timestamp("next_attempt_at", nullable=False, server_default=func.now()),
    Timestamp("sent_at"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Index(None, "status", "next_attempt_at"),
    Index(None, "merchant_id", "created_at"),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)

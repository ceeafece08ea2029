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
    Column("payment_id", Text, nullable=False, comment="one fulfillment per paid order: unique with order_id"),
    Column("step", Text, nullable=False),
    Column("order", JSONB, nullable=False, comment="lines, packaging, address as paid"),
    Column("shipping_method", Text),
    Column("carrier", Text),
    Column("tracking_number", Text),
    Column("version", Integer, nullable=False, server_default="0"),
    Timestamp("paid_at", nullable=False),
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
    Column("carrier", Text, nullable=False),
    Column("tracking_number", Text, nullable=False, unique=True),
    Column("tracking_url", Text, nullable=False),
    Timestamp("shipped_at", nullable=False),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)

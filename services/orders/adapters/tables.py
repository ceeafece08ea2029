from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.orders.settings import OrdersSettings
from shared.db import Timestamp, common_tables, service_metadata

metadata = service_metadata(OrdersSettings.model_fields["db_schema"].default)

orders = Table(
    "orders",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("store_id", Text, nullable=False),
    Column("external_order_id", Text, nullable=False),
    Column("order_name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_reason", Text),
    Column("currency", Text, nullable=False),
    Column("total_price", Numeric(14, 2), nullable=False),
    Column("paid_amount", Numeric(14, 2)),
    Column("customer_email", Text),
    Column("customer_locale", Text),
    Column("shipping_address", JSONB, nullable=False),
    Column("country_code", Text, nullable=False, server_default=""),
    Column("lines", JSONB, nullable=False),
    Column("flags", JSONB, nullable=False, server_default="[]"),
    Timestamp("store_updated_at", nullable=False),
    Column("version", Integer, nullable=False, server_default="0"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Timestamp("updated_at", nullable=False, server_default=func.now()),
    UniqueConstraint("store_id", "external_order_id"),
    Index(None, "merchant_id", "status", "created_at", "id"),
)

order_timeline = Table(
    "order_timeline",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", Text, ForeignKey("orders.orders.id"), nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Timestamp("at", nullable=False, server_default=func.now()),
)

catalog_variants = Table(
    "catalog_variants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("sku", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("unit_cost", Numeric(14, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("weight_grams", Integer, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    CheckConstraint("unit_cost >= 0", name="cost_not_negative"),
)

product_connections = Table(
    "product_connections",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("store_id", Text, nullable=False),
    Column("external_product_id", Text, nullable=False),
    Column("external_variant_id", Text, nullable=False, server_default=""),
    Column("catalog_variant_id", Text, ForeignKey("orders.catalog_variants.id"), nullable=False),
    Column("quantity_ratio", Integer, nullable=False, server_default="1"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    UniqueConstraint("merchant_id", "store_id", "external_product_id", "external_variant_id"),
    CheckConstraint("quantity_ratio > 0", name="ratio_positive"),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)

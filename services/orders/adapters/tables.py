from sqlalchemy import (
    BigInteger,
    Boolean,
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
    Column("paid_currency", Text, comment="the agent charges in the catalog's currency"),
    Column("customer_email", Text),
    Column("customer_locale", Text),
    Column("customer_name", Text, nullable=False, server_default=""),
    Column("store_name", Text, nullable=False, server_default=""),
    Column("customer_notified_by_store", Boolean, nullable=False, server_default="false"),
    Column("resume_status", Text, comment="where the order returns when its open after-sales case ends"),
    Column("shipping_address", JSONB, nullable=False),
    Column("country_code", Text, nullable=False, server_default=""),
    Column("lines", JSONB, nullable=False),
    Column("flags", JSONB, nullable=False, server_default="[]"),
    Column("packaging", JSONB, nullable=False, server_default="[]"),
    Column("shipping", JSONB, comment="the shipping method the order was paid with"),
    Column("shipment", JSONB, comment="carrier and tracking once shipped"),
    Column("early_shipment", JSONB, comment="a shipment whose event came before the payment's: applied when paid"),
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

order_counts = Table(
    "order_counts",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
    comment="orders per merchant and tab, as of the last fold of order_count_changes",
)

order_count_changes = Table(
    "order_count_changes",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("merchant_id", Text, nullable=False, index=True),
    Column("status", Text, nullable=False),
    Column("delta", Integer, nullable=False),
    comment="tab-count changes written with each status change and folded into order_counts in the background;"
    " insert-only, so concurrent status changes of one merchant never wait on one counter row",
)

after_sales_cases = Table(
    "after_sales_cases",
    metadata,
    Column("id", Text, primary_key=True),
    Column("order_id", Text, ForeignKey("orders.orders.id"), nullable=False, index=True),
    Column("merchant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("external_line_ids", JSONB, nullable=False),
    Column("amount", Numeric(14, 2)),
    Column("currency", Text),
    Column("requested_by", Text, nullable=False),
    Column("rejection_reason", Text),
    Column("failure_reason", Text),
    Column("shipment", JSONB),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Timestamp("updated_at", nullable=False, server_default=func.now()),
    Index(None, "kind", "state", "created_at"),
)

catalog_products = Table(
    "catalog_products",
    metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

catalog_variants = Table(
    "catalog_variants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("product_id", Text, ForeignKey("orders.catalog_products.id"), index=True),
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

private_products = Table(
    "private_products",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("catalog_variant_id", Text, ForeignKey("orders.catalog_variants.id"), nullable=False),
    Column("card_message", Text),
    Column("status", Text, nullable=False, server_default="active"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    CheckConstraint("kind in ('packaging', 'card')", name="kind_known"),
)

packaging_rules = Table(
    "packaging_rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("store_id", Text, nullable=False),
    Column("external_product_id", Text, comment="null: every order of the store"),
    Column("private_product_id", Text, ForeignKey("orders.private_products.id"), nullable=False),
    Column("quantity", Integer, nullable=False, server_default="1"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Index(None, "merchant_id", "store_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

quotes = Table(
    "quotes",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("store_id", Text, nullable=False),
    Column("external_product_id", Text, nullable=False),
    Column("external_variant_id", Text, nullable=False, server_default=""),
    Column("title", Text, nullable=False),
    Column("sku", Text),
    Column("note", Text),
    Column("status", Text, nullable=False),
    Column("claimed_by", Text),
    Column("catalog_variant_id", Text, ForeignKey("orders.catalog_variants.id")),
    Column("quantity_ratio", Integer),
    Column("decline_reason", Text),
    Column("connection_id", Text),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Timestamp("updated_at", nullable=False, server_default=func.now()),
    Index(None, "merchant_id", "created_at"),
    Index(None, "status", "created_at"),
)

merchant_settings = Table(
    "merchant_settings",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("auto_connect_by_sku", Boolean, nullable=False, server_default="false"),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)

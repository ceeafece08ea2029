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
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.checkout.settings import CheckoutSettings
from shared.db import Timestamp, common_tables, service_metadata

metadata = service_metadata(CheckoutSettings.model_fields["db_schema"].default)

# What checkout knows of an order, kept from the orders service's events.
payable_orders = Table(
    "payable_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("status", Text, nullable=False, comment="to_order | pending | paying | paid | unavailable"),
    Column("status_reason", Text),
    Column("currency", Text, nullable=False),
    Column("order", JSONB, nullable=False, comment="PayableOrderPayload"),
    # What the shipping rules chose, and why; a problem flags an order whose method cannot ship it.
    Column("shipping_method_id", Text),
    Column("shipping_rule_id", Text),
    Column("shipping_reason", Text),
    Column("shipping_problem", Text),
    Timestamp("updated_at", nullable=False, server_default=func.now()),
    Index(None, "merchant_id", "status"),
)

wallets = Table(
    "wallets",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("currency", Text, primary_key=True),
    Column("balance", Numeric(14, 2), nullable=False, server_default="0", comment="sum of the wallet's postings"),
    Column("credit_limit", Numeric(14, 2), nullable=False, server_default="0"),
    CheckConstraint("balance + credit_limit >= 0", name="no_overdraft"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("transaction_id", Uuid, nullable=False, index=True),
    Column("account", Text, nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("amount", Numeric(14, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("kind", Text, nullable=False, comment="top_up | charge | refund"),
    Column("reference", Text, nullable=False),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Index(None, "account", "id"),
)

checkouts = Table(
    "checkouts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False, index=True),
    Column("status", Text, nullable=False, comment="open | paying | paid"),
    Column("currency", Text, nullable=False),
    Column("total", Numeric(14, 2), nullable=False),
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

checkout_orders = Table(
    "checkout_orders",
    metadata,
    Column("checkout_id", Text, ForeignKey("checkout.checkouts.id"), primary_key=True),
    Column("order_id", Text, primary_key=True),
    Column("breakdown", JSONB, nullable=False, comment="products, packaging, shipping, fees, total at checkout"),
    Column("order", JSONB, nullable=False, comment="the order as priced"),
    Column("shipping", JSONB, comment="ShippingChoice at checkout; null when no method was chosen"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("checkout_id", Text, ForeignKey("checkout.checkouts.id"), nullable=False, index=True),
    Column("merchant_id", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("amount", Numeric(14, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False, comment="succeeded | failed | processing"),
    Column("failure_reason", Text),
    Column("provider_ref", Text, unique=True, comment="the card provider's payment id (Stripe PaymentIntent)"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Text, primary_key=True, comment="the refund id of RefundApproved"),
    Column("order_id", Text, nullable=False, index=True),
    Column("merchant_id", Text, nullable=False),
    Column("payment_id", Text),
    Column("method", Text),
    Column("amount", Numeric(14, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False, comment="completed | failed"),
    Column("failure_reason", Text),
    Column("provider_ref", Text),
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

shipping_methods = Table(
    "shipping_methods",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False, comment="carrier and line, e.g. YunExpress Global Direct"),
    Column("carrier", Text, nullable=False, comment="the carrier name the stores accept"),
    Column("currency", Text, nullable=False),
    Column("rates", JSONB, nullable=False, comment="country -> rate table; the keys are the destinations"),
    Column("delivery_days_min", Integer, nullable=False),
    Column("delivery_days_max", Integer, nullable=False),
    Column("max_weight_grams", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

shipping_rules = Table(
    "shipping_rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("priority", Integer, nullable=False, comment="lowest first"),
    Column("enabled", Boolean, nullable=False),
    Column("conditions", JSONB, nullable=False),
    Column("action", Text, nullable=False, comment="method | cheapest | fastest"),
    Column("method_ids", JSONB, nullable=False),
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

merchant_settings = Table(
    "merchant_settings",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("default_shipping_method_id", Text, comment="applies when no shipping rule matches"),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
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
    Column("status", Text, nullable=False, comment="to_order | pending | paid | unavailable"),
    Column("status_reason", Text),
    Column("currency", Text, nullable=False),
    Column("order", JSONB, nullable=False, comment="PayableOrderPayload"),
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
    Column("status", Text, nullable=False, comment="open | paid"),
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
    Timestamp("created_at", nullable=False, server_default=func.now()),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)

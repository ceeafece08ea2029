"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-26 11:00:35.516481
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="open | paying | paid"),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkouts")),
        schema="checkout",
    )
    op.create_index(op.f("ix_checkouts_merchant_id"), "checkouts", ["merchant_id"], unique=False, schema="checkout")
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, comment="top_up | charge | refund"),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        schema="checkout",
    )
    op.create_index(
        op.f("ix_ledger_entries_account_id"), "ledger_entries", ["account", "id"], unique=False, schema="checkout"
    )
    op.create_index(
        op.f("ix_ledger_entries_transaction_id"), "ledger_entries", ["transaction_id"], unique=False, schema="checkout"
    )
    op.create_table(
        "payable_orders",
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="to_order | pending | paying | paid | unavailable"),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("order", postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment="PayableOrderPayload"),
        sa.Column("shipping_method_id", sa.Text(), nullable=True),
        sa.Column("shipping_rule_id", sa.Text(), nullable=True),
        sa.Column("shipping_reason", sa.Text(), nullable=True),
        sa.Column("shipping_problem", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_payable_orders")),
        schema="checkout",
    )
    op.create_index(
        op.f("ix_payable_orders_merchant_id_status"),
        "payable_orders",
        ["merchant_id", "status"],
        unique=False,
        schema="checkout",
    )
    op.create_table(
        "wallets",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column(
            "balance",
            sa.Numeric(precision=14, scale=2),
            server_default="0",
            nullable=False,
            comment="sum of the wallet's postings",
        ),
        sa.Column("credit_limit", sa.Numeric(precision=14, scale=2), server_default="0", nullable=False),
        sa.CheckConstraint("balance + credit_limit >= 0", name=op.f("ck_wallets_no_overdraft")),
        sa.PrimaryKeyConstraint("merchant_id", "currency", name=op.f("pk_wallets")),
        schema="checkout",
    )
    op.create_table(
        "checkout_orders",
        sa.Column("checkout_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column(
            "breakdown",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="products, packaging, shipping, fees, total at checkout",
        ),
        sa.Column("order", postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment="the order as priced"),
        sa.Column(
            "shipping",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="ShippingChoice at checkout; null when no method was chosen",
        ),
        sa.ForeignKeyConstraint(
            ["checkout_id"], ["checkout.checkouts.id"], name=op.f("fk_checkout_orders_checkout_id_checkouts")
        ),
        sa.PrimaryKeyConstraint("checkout_id", "order_id", name=op.f("pk_checkout_orders")),
        schema="checkout",
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("checkout_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="succeeded | failed | processing"),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column(
            "provider_ref", sa.Text(), nullable=True, comment="the card provider's payment id (Stripe PaymentIntent)"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_id"], ["checkout.checkouts.id"], name=op.f("fk_payments_checkout_id_checkouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("provider_ref", name=op.f("uq_payments_provider_ref")),
        schema="checkout",
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Text(), nullable=False, comment="the refund id of RefundApproved"),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="completed | failed"),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("provider_ref", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        schema="checkout",
    )
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"], unique=False, schema="checkout")
    op.create_table(
        "shipping_methods",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, comment="carrier and line, e.g. YunExpress Global Direct"),
        sa.Column("carrier", sa.Text(), nullable=False, comment="the carrier name the stores accept"),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column(
            "rates",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="country -> rate table; the keys are the destinations",
        ),
        sa.Column("delivery_days_min", sa.Integer(), nullable=False),
        sa.Column("delivery_days_max", sa.Integer(), nullable=False),
        sa.Column("max_weight_grams", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_methods")),
        schema="checkout",
    )
    op.create_table(
        "shipping_rules",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False, comment="lowest first"),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("conditions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("action", sa.Text(), nullable=False, comment="method | cheapest | fastest"),
        sa.Column("method_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_rules")),
        schema="checkout",
    )
    op.create_index(
        op.f("ix_shipping_rules_merchant_id"), "shipping_rules", ["merchant_id"], unique=False, schema="checkout"
    )
    op.create_table(
        "merchant_settings",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column(
            "default_shipping_method_id",
            sa.Text(),
            nullable=True,
            comment="applies when no shipping rule matches",
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_merchant_settings")),
        schema="checkout",
    )
    op.create_index(op.f("ix_payments_checkout_id"), "payments", ["checkout_id"], unique=False, schema="checkout")
    create_messaging_tables("checkout")


def downgrade() -> None:
    drop_messaging_tables("checkout")
    op.drop_table("merchant_settings", schema="checkout")
    op.drop_index(op.f("ix_shipping_rules_merchant_id"), table_name="shipping_rules", schema="checkout")
    op.drop_table("shipping_rules", schema="checkout")
    op.drop_table("shipping_methods", schema="checkout")
    op.drop_index(op.f("ix_refunds_order_id"), table_name="refunds", schema="checkout")
    op.drop_table("refunds", schema="checkout")
    op.drop_index(op.f("ix_payments_checkout_id"), table_name="payments", schema="checkout")
    op.drop_table("payments", schema="checkout")
    op.drop_table("checkout_orders", schema="checkout")
    op.drop_table("wallets", schema="checkout")
    op.drop_index(op.f("ix_payable_orders_merchant_id_status"), table_name="payable_orders", schema="checkout")
    op.drop_table("payable_orders", schema="checkout")
    op.drop_index(op.f("ix_ledger_entries_transaction_id"), table_name="ledger_entries", schema="checkout")
    op.drop_index(op.f("ix_ledger_entries_account_id"), table_name="ledger_entries", schema="checkout")
    op.drop_table("ledger_entries", schema="checkout")
    op.drop_index(op.f("ix_checkouts_merchant_id"), table_name="checkouts", schema="checkout")
    op.drop_table("checkouts", schema="checkout")

"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:57:17.643714
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
        "catalog_products",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_products")),
        schema="orders",
    )
    op.create_table(
        "merchant_settings",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("auto_connect_by_sku", sa.Boolean(), server_default="false", nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_merchant_settings")),
        schema="orders",
    )
    op.create_table(
        "order_counts",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "status", name=op.f("pk_order_counts")),
        schema="orders",
        comment="orders per merchant and tab, as of the last fold of order_count_changes",
    )
    op.create_table(
        "order_count_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_count_changes")),
        schema="orders",
        comment="tab-count changes written with each status change and folded into order_counts in the background;"
        " insert-only, so concurrent status changes of one merchant never wait on one counter row",
    )
    op.create_index(
        op.f("ix_order_count_changes_merchant_id"),
        "order_count_changes",
        ["merchant_id"],
        unique=False,
        schema="orders",
    )
    op.create_table(
        "catalog_variants",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=True),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("unit_cost", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("unit_cost >= 0", name=op.f("ck_catalog_variants_cost_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_variants")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["orders.catalog_products.id"], name=op.f("fk_catalog_variants_product_id_catalog_products")
        ),
        sa.UniqueConstraint("sku", name=op.f("uq_catalog_variants_sku")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_catalog_variants_product_id"), "catalog_variants", ["product_id"], unique=False, schema="orders"
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("external_order_id", sa.Text(), nullable=False),
        sa.Column("order_name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("total_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("paid_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("paid_currency", sa.Text(), nullable=True, comment="the agent charges in the catalog's currency"),
        sa.Column("customer_email", sa.Text(), nullable=True),
        sa.Column("customer_locale", sa.Text(), nullable=True),
        sa.Column("customer_name", sa.Text(), server_default="", nullable=False),
        sa.Column("store_name", sa.Text(), server_default="", nullable=False),
        sa.Column("customer_notified_by_store", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "resume_status",
            sa.Text(),
            nullable=True,
            comment="where the order returns when its open after-sales case ends",
        ),
        sa.Column("shipping_address", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("country_code", sa.Text(), server_default="", nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("flags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("packaging", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column(
            "shipping",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="the shipping method the order was paid with",
        ),
        sa.Column(
            "shipment",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="carrier and tracking once shipped",
        ),
        sa.Column(
            "early_shipment",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="a shipment whose event came before the payment's: applied when paid",
        ),
        sa.Column("store_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("store_id", "external_order_id", name=op.f("uq_orders_store_id")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_orders_merchant_id_status_created_at_id"),
        "orders",
        ["merchant_id", "status", "created_at", "id"],
        unique=False,
        schema="orders",
    )
    op.create_table(
        "order_timeline",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.orders.id"], name=op.f("fk_order_timeline_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_timeline")),
        schema="orders",
    )
    op.create_index(op.f("ix_order_timeline_order_id"), "order_timeline", ["order_id"], unique=False, schema="orders")
    op.create_table(
        "after_sales_cases",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("external_line_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("shipment", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.orders.id"], name=op.f("fk_after_sales_cases_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_after_sales_cases")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_after_sales_cases_kind_state_created_at"),
        "after_sales_cases",
        ["kind", "state", "created_at"],
        unique=False,
        schema="orders",
    )
    op.create_index(
        op.f("ix_after_sales_cases_order_id"), "after_sales_cases", ["order_id"], unique=False, schema="orders"
    )
    op.create_table(
        "private_products",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("catalog_variant_id", sa.Text(), nullable=False),
        sa.Column("card_message", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind in ('packaging', 'card')", name=op.f("ck_private_products_kind_known")),
        sa.ForeignKeyConstraint(
            ["catalog_variant_id"],
            ["orders.catalog_variants.id"],
            name=op.f("fk_private_products_catalog_variant_id_catalog_variants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_products")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_private_products_merchant_id"), "private_products", ["merchant_id"], unique=False, schema="orders"
    )
    op.create_table(
        "packaging_rules",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("external_product_id", sa.Text(), nullable=True, comment="null: every order of the store"),
        sa.Column("private_product_id", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), server_default="1", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_packaging_rules_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["private_product_id"],
            ["orders.private_products.id"],
            name=op.f("fk_packaging_rules_private_product_id_private_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packaging_rules")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_packaging_rules_merchant_id_store_id"),
        "packaging_rules",
        ["merchant_id", "store_id"],
        unique=False,
        schema="orders",
    )
    op.create_table(
        "quotes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("external_product_id", sa.Text(), nullable=False),
        sa.Column("external_variant_id", sa.Text(), server_default="", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("catalog_variant_id", sa.Text(), nullable=True),
        sa.Column("quantity_ratio", sa.Integer(), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("connection_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["catalog_variant_id"],
            ["orders.catalog_variants.id"],
            name=op.f("fk_quotes_catalog_variant_id_catalog_variants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
        schema="orders",
    )
    op.create_index(
        op.f("ix_quotes_merchant_id_created_at"), "quotes", ["merchant_id", "created_at"], unique=False, schema="orders"
    )
    op.create_index(
        op.f("ix_quotes_status_created_at"), "quotes", ["status", "created_at"], unique=False, schema="orders"
    )
    op.create_table(
        "product_connections",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("external_product_id", sa.Text(), nullable=False),
        sa.Column("external_variant_id", sa.Text(), server_default="", nullable=False),
        sa.Column("catalog_variant_id", sa.Text(), nullable=False),
        sa.Column("quantity_ratio", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("quantity_ratio > 0", name=op.f("ck_product_connections_ratio_positive")),
        sa.ForeignKeyConstraint(
            ["catalog_variant_id"],
            ["orders.catalog_variants.id"],
            name=op.f("fk_product_connections_catalog_variant_id_catalog_variants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_connections")),
        sa.UniqueConstraint(
            "merchant_id",
            "store_id",
            "external_product_id",
            "external_variant_id",
            name=op.f("uq_product_connections_merchant_id"),
        ),
        schema="orders",
    )
    create_messaging_tables("orders")


def downgrade() -> None:
    drop_messaging_tables("orders")
    op.drop_table("product_connections", schema="orders")
    op.drop_table("quotes", schema="orders")
    op.drop_table("packaging_rules", schema="orders")
    op.drop_table("private_products", schema="orders")
    op.drop_table("after_sales_cases", schema="orders")
    op.drop_index(op.f("ix_order_timeline_order_id"), table_name="order_timeline", schema="orders")
    op.drop_table("order_timeline", schema="orders")
    op.drop_index(op.f("ix_orders_merchant_id_status_created_at_id"), table_name="orders", schema="orders")
    op.drop_table("orders", schema="orders")
    op.drop_table("catalog_variants", schema="orders")
    op.drop_table("order_counts", schema="orders")
    op.drop_index(op.f("ix_order_count_changes_merchant_id"), table_name="order_count_changes", schema="orders")
    op.drop_table("order_count_changes", schema="orders")
    op.drop_table("merchant_settings", schema="orders")
    op.drop_table("catalog_products", schema="orders")

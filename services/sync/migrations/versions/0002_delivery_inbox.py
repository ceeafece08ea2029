"""webhook deliveries become the inbox: accepted first, applied in batches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "webhook_deliveries",
        "outcome",
        existing_type=sa.Text(),
        nullable=True,
        comment="what applying it did; null while it waits to be applied",
        schema="sync",
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="the normalised order or cancellation, until applied",
        ),
        schema="sync",
    )
    op.add_column("webhook_deliveries", sa.Column("external_order_id", sa.Text(), nullable=True), schema="sync")
    # Deliveries recorded before this revision were applied when they were received.
    op.add_column(
        "webhook_deliveries", sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True), schema="sync"
    )
    op.execute("UPDATE sync.webhook_deliveries SET applied_at = received_at")
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["received_at"],
        unique=False,
        schema="sync",
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_store_id_received_at"),
        "webhook_deliveries",
        ["store_id", "received_at"],
        unique=False,
        schema="sync",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_store_id_received_at"), table_name="webhook_deliveries", schema="sync")
    op.drop_index("ix_webhook_deliveries_pending", table_name="webhook_deliveries", schema="sync")
    op.drop_column("webhook_deliveries", "applied_at", schema="sync")
    op.drop_column("webhook_deliveries", "external_order_id", schema="sync")
    op.drop_column("webhook_deliveries", "payload", schema="sync")
    op.execute("UPDATE sync.webhook_deliveries SET outcome = 'applied' WHERE outcome IS NULL")
    op.alter_column("webhook_deliveries", "outcome", existing_type=sa.Text(), nullable=False, schema="sync")

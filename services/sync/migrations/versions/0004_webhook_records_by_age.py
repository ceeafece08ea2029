"""webhook deliveries and refused payloads by age, so that those older than the retention can be pruned

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 20:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BRIN: rows arrive in time order, so the index is a few pages, nearly free to keep up
INDEXES = {
    "webhook_deliveries": "ix_webhook_deliveries_received_at",
    "webhook_failures": "ix_webhook_failures_received_at",
}


def upgrade() -> None:
    for table, name in INDEXES.items():
        op.create_index(name, table, ["received_at"], schema="sync", postgresql_using="brin")


def downgrade() -> None:
    for table, name in INDEXES.items():
        op.drop_index(name, table_name=table, schema="sync")

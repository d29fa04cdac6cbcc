"""Release 0002: API tokens, and cancellation of running studies.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Adds the ``tokens`` table (a user's name, the SHA-256 of their token, whether they are an
admin) and ``studies.cancel_requested``, the flag a running study's driver polls. The
column has a server default so that rows written by 0001 read as "not cancelled".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # A plain ADD COLUMN, not batch mode: recreating `studies` on SQLite would drop the
    # table, and with foreign keys on, cascade that drop into every trial.
    op.add_column(
        "studies",
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # Native DROP COLUMN (SQLite >= 3.35) for the same reason as in `upgrade`.
    op.drop_column("studies", "cancel_requested")
    op.drop_table("tokens")

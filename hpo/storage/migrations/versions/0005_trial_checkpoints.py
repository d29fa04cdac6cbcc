"""Release 0005: where each trial's checkpoints are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

* ``trials.last_checkpoint`` and ``trials.best_checkpoint``: JSON documents
  ``{"location": …, "epoch": n, "bytes": size}`` of the trial's latest state and of the
  state at its best epoch so far (the same document when they coincide), NULL when the
  trial saved none. The files live in the artifact store (``hpo/artifacts.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("trials", sa.Column("last_checkpoint", _JSON, nullable=True))
    op.add_column("trials", sa.Column("best_checkpoint", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("best_checkpoint")
        batch.drop_column("last_checkpoint")

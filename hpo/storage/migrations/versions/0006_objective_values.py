"""Multi-objective studies: each trial's value of every objective.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

* ``trials.objective_values``: a JSON list, one value per objective of the study's spec
  in its order (NULL for a value not finite); for a single-objective study the one
  ``objective_value``. NULL until the trial reports.
* Existing trials (all of single-objective studies) get ``[objective_value]`` where they
  have one, so their values read the same as a new trial's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    op.add_column("trials", sa.Column("objective_values", json, nullable=True))
    trials = sa.table(
        "trials",
        sa.column("id", sa.Integer()),
        sa.column("objective_value", sa.Float()),
        sa.column("objective_values", json),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(trials.c.id, trials.c.objective_value).where(
            trials.c.objective_value.is_not(None)
        )
    ).all()
    for trial_id, value in rows:
        bind.execute(
            sa.update(trials).where(trials.c.id == trial_id).values(objective_values=[value])
        )


def downgrade() -> None:
    op.drop_column("trials", "objective_values")

"""Release 0001: studies, trials, metrics and events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written to match `hpo.storage.models`. `studies.best_trial_id` and `trials.study_id`
reference each other, so the best-trial foreign key is added after both tables exist
(batch mode, because SQLite cannot ALTER a constraint onto a table).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("spec", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("objective_metric", sa.String(255), nullable=False),
        sa.Column("objective_mode", sa.String(3), nullable=False),
        sa.Column("n_trials_target", sa.Integer(), nullable=True),
        sa.Column("last_trial_number", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("best_trial_id", sa.Integer(), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_studies_status_id", "studies", ["status", "id"])
    op.create_index("ix_studies_owner_id", "studies", ["owner", "id"])

    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer(),
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ray_trial_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", JSON_DOC, nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("epochs_run", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("final_metrics", JSON_DOC, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("provenance", JSON_DOC, nullable=False),
        sa.UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
        sa.UniqueConstraint("study_id", "ray_trial_id", name="uq_trials_study_ray_trial_id"),
    )
    op.create_index("ix_trials_study_status", "trials", ["study_id", "status"])
    op.create_index("ix_trials_study_best_value", "trials", ["study_id", "best_value"])

    with op.batch_alter_table("studies") as batch:
        batch.create_foreign_key(
            "fk_studies_best_trial", "trials", ["best_trial_id"], ["id"], ondelete="SET NULL"
        )

    op.create_table(
        "metrics",
        sa.Column(
            "trial_id",
            sa.Integer(),
            sa.ForeignKey("trials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Float(), nullable=True),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer(),
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trial_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", JSON_DOC, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_events_study_id", "events", ["study_id", "id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("metrics")
    with op.batch_alter_table("studies") as batch:
        batch.drop_constraint("fk_studies_best_trial", type_="foreignkey")
    op.drop_table("trials")
    op.drop_table("studies")

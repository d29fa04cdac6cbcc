"""Release 0004: fenced leases, numbered attempts, one objective value per trial.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

* ``studies.lease_token``: the fencing token, incremented by every claim of the lease.
* ``trials.attempt``, ``trials.lease_token``, ``trials.objective_value`` (+ its index).
* ``metrics`` keyed by (trial_id, attempt, step, name): rows stored before are attempt 1.
  SQLite cannot change a primary key in place, so the table is rebuilt (batch mode).
* Existing trials get ``objective_value`` = their ``last_value`` (``objective.value``
  defaults to ``last``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "studies", sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("trials", sa.Column("objective_value", sa.Float(), nullable=True))
    op.add_column("trials", sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("trials", sa.Column("lease_token", sa.Integer(), nullable=True))
    op.execute("UPDATE trials SET objective_value = last_value")
    op.create_index("ix_trials_study_objective_value", "trials", ["study_id", "objective_value"])
    _rekey_metrics(("trial_id", "attempt", "step", "name"))


def downgrade() -> None:
    op.execute(
        "DELETE FROM metrics WHERE EXISTS (SELECT 1 FROM metrics m2 "
        "WHERE m2.trial_id = metrics.trial_id AND m2.step = metrics.step "
        "AND m2.name = metrics.name AND m2.attempt > metrics.attempt) "
    )
    _rekey_metrics(("trial_id", "step", "name"))
    op.drop_index("ix_trials_study_objective_value", table_name="trials")
    op.drop_column("trials", "lease_token")
    op.drop_column("trials", "attempt")
    op.drop_column("trials", "objective_value")
    op.drop_column("studies", "lease_token")


def _rekey_metrics(key: tuple[str, ...]) -> None:
    """Give ``metrics`` the primary key `key`, with an ``attempt`` column iff it names one.

    PostgreSQL alters the table in place; SQLite cannot change a primary key, so there
    the table is rebuilt and its rows copied (in the migration's one transaction).
    """
    with_attempt = "attempt" in key
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE metrics DROP CONSTRAINT metrics_pkey")
        if with_attempt:
            op.add_column(
                "metrics",
                sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
            )
        else:
            op.drop_column("metrics", "attempt")
        op.create_primary_key("metrics_pkey", "metrics", list(key))
        return
    columns: list[sa.Column[Any]] = [
        sa.Column(
            "trial_id",
            sa.Integer(),
            sa.ForeignKey("trials.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
    ]
    if with_attempt:
        columns.insert(1, sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
    op.create_table("metrics_new", *columns, sa.PrimaryKeyConstraint(*key))
    copied = "trial_id, step, name, value"
    op.execute(f"INSERT INTO metrics_new ({copied}) SELECT {copied} FROM metrics")
    op.drop_table("metrics")
    op.rename_table("metrics_new", "metrics")

"""Release 0003: an index for one trial's events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The trial page and `GET /studies/{id}/trials/{number}` list a trial's events; without
this index that read scans every event of the study (three or more per trial).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_study_trial", "events", ["study_id", "trial_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_study_trial", table_name="events")

"""The Alembic script directory of the hpo schema, and the functions that run it.

Revisions live in ``versions/`` and are named after the release that introduced them
(``0001``). The functions are those of `hpo.storage.database`, gathered here for the
``hpo db`` commands.
"""

from __future__ import annotations

from hpo.storage.database import current_revision, downgrade, head_revision, upgrade

__all__ = ["current_revision", "downgrade", "head_revision", "upgrade"]

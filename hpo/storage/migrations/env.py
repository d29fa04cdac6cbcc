"""Alembic environment: runs migrations on a connection handed in by `hpo.storage.database`.

`hpo.storage.database.upgrade` opens the engine (with the SQLite pragmas) and passes its
connection through ``config.attributes["connection"]``; the URL-only path below is for
running the ``alembic`` command by hand against ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from hpo.storage.database import create_engine
from hpo.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        # SQLite cannot ALTER constraints: batch mode recreates the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///./hpo.db")
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()

"""Engine set-up: URL rewriting and the SQLite pragmas every connection must carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.storage.database import create_engine, normalize_url
from hpo.storage.errors import StorageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///./hpo.db", "sqlite:///./hpo.db"),
    ],
)
def test_normalize_url_points_postgres_at_psycopg(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_sqlite_connections_carry_the_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/p.db")
    try:
        with engine.connect() as conn:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == 30000
            assert pragma("foreign_keys") == 1
            assert pragma("synchronous") == 1  # NORMAL
    finally:
        engine.dispose()


def test_an_invalid_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        create_engine("not a url")

"""Fixtures of the API tests: one database per test module and backend.

``backend_url`` is module-scoped and parametrized over SQLite and PostgreSQL like the
``db_url`` fixture of tests/conftest.py (and built with its ``make_pg_database``), so that
a module starts one server and its tests share it and its database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database for one module's server (see the module docstring)."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("api") / "hpo.db"
        return f"sqlite:///{path}"
    make: Callable[[], str] = request.getfixturevalue("make_pg_database")
    return make()

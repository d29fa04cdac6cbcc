"""Fixtures of the dashboard tests: a real uvicorn serving a SQLite database seeded through
the repository, and Debian's Chromium driven by Playwright.

The browser is required, not optional: if Playwright or Chromium is missing the tests FAIL
with how to install them (CI installs both: `.ci/run`, pyproject's `dev` extra).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from hpo.config import Settings
from tests.api.support import live_server
from tests.dashboard.browser import TIMEOUT_MS
from tests.dashboard.seed import SeededStudies, seed_dashboard

CHROMIUM = os.environ.get("HPO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (Debian's, at /usr/bin/chromium) under Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright is not installed: `.venv/bin/pip install -e '.[dev]'` (or `pip install "
            "playwright`); the dashboard tests need it.",
            pytrace=False,
        )
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: `apt-get install -y chromium` (or set "
            "HPO_TEST_CHROMIUM); the dashboard tests need a real browser.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'hpo.db'}"


@pytest.fixture(scope="module")
def seeded(db_file: str) -> SeededStudies:
    return seed_dashboard(db_file)


@pytest.fixture(scope="module")
def base_url(db_file: str, seeded: SeededStudies) -> Iterator[str]:
    app = create_app(db_file, settings=Settings())
    app.state.events_poll_s = 0.2
    with live_server(app) as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that records console errors and uncaught exceptions in `page.errors`."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    yield tab
    context.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS

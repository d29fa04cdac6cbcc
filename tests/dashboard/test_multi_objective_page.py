"""The Pareto front on a multi-objective study's page, in a real browser: the scatter of
every completed trial with the front highlighted, and the Pareto set's table; a
single-objective study's page keeps the section hidden."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from hpo import service
from hpo.config import Settings
from hpo.spec import load_spec
from hpo.storage.repository import Repository
from tests.api.support import live_server
from tests.dashboard.seed import SPEC
from tests.test_multi_objective_results import FRONT, TRIALS, _study

pytestmark = pytest.mark.slow
TIMEOUT_MS = 15_000


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    yield tab
    context.close()


def test_pareto_front_and_table(page: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    repo, study = _study(url)
    with Repository(url) as other:
        single = service.submit_study(other, load_spec(SPEC), owner=None)
    with live_server(create_app(url, settings=Settings())) as base:
        page.goto(f"{base}/studies/{study.id}")
        page.wait_for_selector("#pareto:not([hidden])")
        page.wait_for_function(
            "() => (document.getElementById('plot-pareto')?.data || []).length === 2"
        )
        data = page.evaluate(
            "document.getElementById('plot-pareto').data"
            ".map(t => ({name: t.name, x: t.x, y: t.y, shape: t.line?.shape}))"
        )
        completed = [t for t in TRIALS if t[3] == "completed"]
        assert data[0]["name"] == "completed trials"
        assert sorted(data[0]["x"]) == sorted(t[1][-1] for t in completed)
        # The front, ordered along the first objective, is trials 4, 2, 1.
        assert data[1]["name"] == "Pareto front"
        assert data[1]["x"] == [0.60, 0.90, 0.95]
        assert data[1]["y"] == [300.0, 1_200.0, 25_000.0]
        # With accuracy maximized, what the front dominates lies below-left: the staircase
        # steps vertically first.
        assert data[1]["shape"] == "vh"
        rows = page.locator("#pareto-table tbody tr")
        assert rows.count() == len(FRONT)
        assert rows.nth(0).locator("td").first.inner_text() == "1"
        headers = page.locator("#pareto-table thead th").all_inner_texts()
        assert headers == ["#", "val_accuracy (max)", "param_count (min)", "hidden"]
        assert page.locator("#pareto-note").inner_text() == ""
        page.screenshot(path=screenshot_dir / "study-pareto.png", full_page=True)
        assert page.errors == []

        page.goto(f"{base}/studies/{single.id}")
        page.wait_for_selector("#plots-empty:not([hidden])")
        assert page.locator("#pareto").is_hidden()
        assert page.errors == []
        page.goto("about:blank")  # close the events stream before the server stops
    repo.close()

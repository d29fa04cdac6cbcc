"""The study page's linked views in a real browser: a mouse drag along a parallel-coordinates
axis selects trials, the table and the other plots show only them, a second axis narrows
the selection, a click on the axis clears it, and the selection opens the compare page; the
contour plot of two parameters; running trials' curves growing as epochs are reported.

Expected trials and values are computed here from the seeded configs (`seed.config_of`)
and the seeded accuracy formula, not read from the page's own data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from hpo.config import Settings
from hpo.storage.repository import Repository, ResultRow
from tests.api.support import live_server
from tests.dashboard.browser import traces
from tests.dashboard.seed import FAILED, PRUNED, SeededStudies, add_trial, config_of, seed_dashboard

pytestmark = pytest.mark.slow
NUMBERS = range(1, 13)


def value_of(number: int) -> float:
    """The seeded trial's one value (val_accuracy at its last epoch), as `seed.add_trial`
    reports it."""
    epochs = 2 if number in PRUNED else 1 if number == FAILED else 5
    quality = 0.5 + 0.04 * ((number * 7) % 11)
    return quality * (1 - math.exp(-epochs / 2))


def axis_x(page: Any, axis: int) -> float:
    """The screen x of a parallel-coordinates axis (axes stand at x = 0, 1, 2, …)."""
    page.locator("#plot-parallel").scroll_into_view_if_needed()
    return page.evaluate(
        f"""(() => {{
          const d = document.getElementById('plot-parallel');
          const box = d.querySelector('.nsewdrag').getBoundingClientRect();
          const [x0, x1] = d.layout.xaxis.range;
          return box.left + ({axis} - x0) / (x1 - x0) * box.width;
        }})()"""
    )


def plot_top(page: Any) -> float:
    """The screen y just inside the top of the parallel coordinates' plot area."""
    return page.locator("#plot-parallel .nsewdrag").bounding_box()["y"] + 4


def tick_y(page: Any, axis: int, label: str) -> float:
    """The screen y of the tick labelled `label` on a parallel-coordinates axis."""
    ys = page.evaluate(
        f"""(() => {{
          const d = document.getElementById('plot-parallel');
          const texts = [...d.querySelectorAll('.annotation')];
          return d.layout.annotations.map((a, i) => [a, texts[i]])
            .filter(([a]) => a.x === {axis} && a.text === {label!r})
            .map(([, g]) => {{
              const r = g.getBoundingClientRect();
              return r.top + r.height / 2;
            }});
        }})()"""
    )
    assert len(ys) == 1, (axis, label, ys)
    return ys[0]


def drag(page: Any, x: float, y0: float, y1: float) -> None:
    page.mouse.move(x, y0)
    page.mouse.down()
    page.mouse.move(x, (y0 + y1) / 2, steps=3)
    page.mouse.move(x, y1, steps=3)
    page.mouse.up()


def table_rows(page: Any) -> list[int]:
    numbers = page.eval_on_selector_all("#trials tbody tr", "rs => rs.map(r => r.dataset.number)")
    return [int(n) for n in numbers]


def row_count(page: Any, count: int) -> None:
    """Wait until the trials table has `count` rows."""
    page.wait_for_function(f"document.querySelectorAll('#trials tbody tr').length === {count}")


def drawn(page: Any, div: str) -> set[int]:
    """The trials drawn in `div` by their markers or lines (their numbers as customdata)."""
    numbers = page.evaluate(
        f"document.getElementById('{div}').data.flatMap(t => t.customdata || [])"
    )
    return {n for n in numbers if n is not None}


def test_drag_on_an_axis_filters_the_table_and_the_plots(
    page: Any, base_url: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    page.goto(f"{base_url}/studies/{seeded.completed_id}")
    page.wait_for_selector("#trials tbody tr")
    page.wait_for_function("(document.getElementById('plot-parallel')?.data || []).length > 2")
    traces(page, "plot-curves", 17)
    assert page.is_hidden("#clear-selection") and page.is_hidden("#compare-selection")
    # Axis 0 is lr (log): drag from its top down to its 0.001 tick.
    lr_x = axis_x(page, 0)
    drag(page, lr_x, plot_top(page), tick_y(page, 0, "0.001"))
    selected = {n for n in NUMBERS if config_of(n)["lr"] >= 1e-3}
    assert selected == {2, 3, 4, 7, 8, 9, 12}  # the test's own premise
    page.wait_for_selector("#table-selection:not([hidden])")
    row_count(page, len(selected))
    assert table_rows(page) == sorted(selected)
    assert page.inner_text("#selection-note") == "7 of 12 trials selected by their lr."
    assert page.inner_text("#page-info") == "1–7 of 7"
    for div in ("plot-history", "plot-slice", "plot-contour"):
        assert drawn(page, div) == selected, div
    ecdf = page.evaluate("document.getElementById('plot-ecdf').data.map(t => t.name)")
    assert ecdf == ["completed (5)", "pruned (stopped early) (2)"]
    # The parallel coordinates keep every trial: the unselected ones in grey, in the legend.
    grey = page.evaluate(
        "document.getElementById('plot-parallel').data.filter(t => t.line?.color === '#c8c8c8'"
        " && !t.showlegend).flatMap(t => t.customdata)"
    )
    assert {n for n in grey if n is not None} == set(NUMBERS) - selected
    legend = page.eval_on_selector_all(
        "#plot-parallel .legend .legendtext", "els => els.map(e => e.textContent)"
    )
    assert "not selected" in legend
    assert page.get_attribute("#plot-parallel", "aria-label").endswith(
        "; 7 selected by ranges on lr."
    )
    # The learning curves are fetched again for the selected trials only.
    page.wait_for_function(
        "document.getElementById('plot-curves').data.filter(t => t.name.startsWith('trial '))"
        f".length === {len(selected)}"
    )
    names = page.evaluate(
        "document.getElementById('plot-curves').data.map(t => t.name)"
        ".filter(n => n.startsWith('trial '))"
    )
    assert {int(n.split()[1]) for n in names} == selected
    assert page.inner_text("#curves-note") == "Showing the 7 selected trials."
    # The table sorts the selection like any page: value, best (max) first.
    page.locator("button.sort[data-sort='objective_value']").click()
    best_first = sorted(selected, key=lambda n: -value_of(n))
    page.wait_for_function(
        f"document.querySelector('#trials tbody tr').dataset.number === '{best_first[0]}'"
    )
    assert table_rows(page) == best_first
    page.screenshot(path=screenshot_dir / "study-selected.png", full_page=True)
    # A second axis narrows it: optimizer (axis 1) from its top tick (sgd) to halfway down
    # to adamw.
    opt_x = axis_x(page, 1)
    sgd, adamw = tick_y(page, 1, "sgd"), tick_y(page, 1, "adamw")
    drag(page, opt_x, plot_top(page), (sgd + adamw) / 2)
    narrowed = {n for n in selected if config_of(n)["optimizer"] == "sgd"}
    assert narrowed == {3, 9, 12}
    row_count(page, len(narrowed))
    assert set(table_rows(page)) == narrowed
    note = page.inner_text("#selection-note")
    assert note == "3 of 12 trials selected by their lr and optimizer."
    assert page.inner_text("#compare-selection") == "Compare the 3 selected trials"
    # A click on the optimizer axis clears its range: back to the lr selection.
    page.mouse.click(opt_x, (sgd + adamw) / 2)
    row_count(page, len(selected))
    # More than four selected: compare opens the best four of them.
    best4 = sorted(best_first[:4])
    assert page.inner_text("#compare-selection") == "Compare the best 4 of the 7 selected"
    with page.expect_navigation():
        page.click("#compare-selection")
    assert page.url.endswith(f"/compare?trials={','.join(map(str, best4))}")
    traces(page, "plot-compare", 4)
    page.go_back()
    # "Clear selection" shows every trial again.
    page.wait_for_selector("#trials tbody tr")
    drag(page, axis_x(page, 0), plot_top(page), tick_y(page, 0, "0.001"))
    page.wait_for_selector("#clear-selection:not([hidden])")
    page.click("#clear-selection")
    page.wait_for_function("document.querySelectorAll('#trials tbody tr').length === 12")
    assert page.is_hidden("#table-selection") and page.is_hidden("#compare-selection")
    traces(page, "plot-history", 4)
    assert drawn(page, "plot-history") == set(NUMBERS)
    assert page.errors == []


def idw(points: list[tuple[float, float, float]], u: float, v: float) -> float:
    """Inverse-distance weighting, power 2: the contour's documented interpolation."""
    weights = [(1 / ((pu - u) ** 2 + (pv - v) ** 2), value) for pu, pv, value in points]
    return sum(w * value for w, value in weights) / sum(w for w, _ in weights)


def test_contour_of_two_parameters(page: Any, base_url: str, seeded: SeededStudies) -> None:
    """lr against hidden, both log-scaled: log axes, a marker per trial at its config, the
    colour interpolated between the completed trials."""
    page.goto(f"{base_url}/studies/{seeded.completed_id}")
    page.wait_for_function("(document.getElementById('plot-contour')?.data || []).length > 1")
    assert page.input_value("#contour-x") == "lr"
    page.select_option("#contour-y", "hidden")
    layout = "document.getElementById('plot-contour').layout"
    page.wait_for_function(f"{layout}.yaxis.title.text === 'hidden (log)'")
    assert page.evaluate(f"[{layout}.xaxis.type, {layout}.yaxis.type]") == ["log", "log"]
    markers = page.evaluate(
        "document.getElementById('plot-contour').data.filter(t => t.type === 'scatter')"
        ".flatMap(t => t.customdata.map((n, i) => [n, t.x[i], t.y[i]]))"
    )
    assert sorted(markers) == [
        [n, pytest.approx(config_of(n)["lr"]), config_of(n)["hidden"]] for n in NUMBERS
    ]
    grid = page.evaluate(
        "document.getElementById('plot-contour').data.find(t => t.type === 'contour')"
    )
    assert len(grid["x"]) == len(grid["y"]) == 30
    assert grid["x"][0] == pytest.approx(1e-4) and grid["x"][-1] == pytest.approx(10**-1.6)
    assert grid["y"][0] == pytest.approx(32) and grid["y"][-1] == pytest.approx(256)
    lr_span = (-4, -1.6)
    hidden_span = (math.log10(32), math.log10(256))
    completed = [n for n in NUMBERS if n not in PRUNED and n != FAILED]
    points = [
        (
            (math.log10(config_of(n)["lr"]) - lr_span[0]) / (lr_span[1] - lr_span[0]),
            (math.log10(config_of(n)["hidden"]) - hidden_span[0])
            / (hidden_span[1] - hidden_span[0]),
            value_of(n),
        )
        for n in completed
    ]
    for j, i in [(0, 0), (15, 7), (29, 29), (4, 22)]:
        assert grid["z"][j][i] == pytest.approx(idw(points, i / 29, j / 29), rel=1e-9), (j, i)
    note = page.inner_text("#contour-note")
    assert "between the 9 completed trials that set both lr and hidden" in note
    assert page.get_attribute("#plot-contour", "aria-label").startswith(
        "Contour: val_accuracy, last epoch over lr (log) and hidden (log), 12 trials"
    )
    # A click on a marker opens its trial, as on every plot.
    with page.expect_navigation():
        page.evaluate(
            "document.getElementById('plot-contour').emit('plotly_click',"
            " {points: [{customdata: 4}]})"
        )
    assert page.url.endswith(f"/studies/{seeded.completed_id}/trials/4")
    assert page.errors == []


def test_running_trials_curves_grow_as_epochs_arrive(
    page: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    """A running trial's partial curve is drawn in the running style and grows with each
    reported epoch, which is not an event: without a reload."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    seeded = seed_dashboard(url)
    with live_server(create_app(url, settings=Settings())) as base:
        page.goto(f"{base}/studies/{seeded.running_id}")
        page.wait_for_function(
            "(document.getElementById('plot-curves')?.data || [])"
            ".filter(t => t.name.startsWith('trial ')).length === 2"
        )
        page.evaluate("window.__same_document = true")
        with Repository(url) as repo:
            number = add_trial(repo, seeded.running_id, "running", 2)
            trial_id = repo.get_trial(seeded.running_id, number).id
        curve = (
            "(document.getElementById('plot-curves').data"
            f".find(t => t.name === 'trial {number} (running)') || {{}}).x"
        )
        page.wait_for_function(f"JSON.stringify({curve}) === '[1,2]'")
        with Repository(url) as repo:
            accuracy = 0.6 * (1 - math.exp(-3 / 2))
            repo.record_results(
                [ResultRow(trial_id, 3, {"epoch": 3.0, "val_accuracy": accuracy}, accuracy)]
            )
        page.wait_for_function(f"JSON.stringify({curve}) === '[1,2,3]'")
        assert page.evaluate("window.__same_document") is True
        line = page.evaluate(
            "document.getElementById('plot-curves').data"
            f".find(t => t.name === 'trial {number} (running)')"
        )
        assert line["line"]["dash"] == "dash" and line["line"]["color"] == "#009e73"
        assert line["y"][-1] == pytest.approx(accuracy)
        latest = page.evaluate(
            "document.getElementById('plot-curves').data"
            ".find(t => t.name === 'running: latest epoch')"
        )
        assert latest["x"] == [3] and latest["customdata"] == [number]
        legend = page.eval_on_selector_all(
            "#plot-curves .legend .legendtext", "els => els.map(e => e.textContent)"
        )
        assert "running" in legend and "running: latest epoch" in legend
        # The epoch axis spans the study's budget: the line grows into its frame.
        assert page.evaluate("document.getElementById('plot-curves').layout.xaxis.range") == [
            0.7,
            5.3,
        ]
        assert "1 running, drawn as far as they have reported" in page.get_attribute(
            "#plot-curves", "aria-label"
        )
        page.locator("#plot-curves").screenshot(path=screenshot_dir / "study-running-curves.png")
        assert page.errors == []
        page.goto("about:blank")  # close the events stream before the server stops

"""The dashboard in a real browser: every page renders without console errors, every plot
has its traces, sorting, filtering, live updates, comparison, 404 pages and login work."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api.app import create_app
from hpo import service
from hpo.config import Settings
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow
from tests.api.support import live_server
from tests.dashboard.browser import TIMEOUT_MS, labelled, traces
from tests.dashboard.seed import (
    FAILED,
    PRUNED,
    SPEC,
    SeededStudies,
    add_trial,
    seed_dashboard,
)

pytestmark = pytest.mark.slow


def well_formed(page: Any) -> None:
    """Every id is unique and all of the page's content is inside <main>."""
    ids = page.eval_on_selector_all("[id]", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # (Plotly adds a hidden <svg id="js-plotly-tester"> of its own.)
    stray = page.evaluate(
        "[...document.body.children].filter(e => !['HEADER', 'MAIN', 'SCRIPT'].includes("
        "e.tagName) && e.id !== 'login' && !e.id.startsWith('js-plotly'))"
        ".map(e => e.outerHTML.slice(0, 80))"
    )
    assert stray == []


def no_cloud(page: Any) -> None:
    """Plotly's mode bars are there, without its logo (a link to plotly.com), "Edit in Chart
    Studio" or "Share chart" (they upload the data), nor any other link off this server."""
    assert page.locator(".modebar-btn").count() > 0  # the check below is not vacuous
    offending = page.evaluate(
        "[...document.querySelectorAll('.modebar-btn, .modebar a, a[href]')].filter(e =>"
        " /cloud|chart studio|share|plotly/i.test((e.dataset.title || '') + ' ' +"
        " (e.getAttribute('href') || '') + ' ' + e.className.baseVal + ' ' + e.className))"
        ".map(e => e.outerHTML.slice(0, 120))"
    )
    assert offending == []
    assert page.locator(".modebar-btn--logo").count() == 0
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    base = page.evaluate("location.origin")
    assert all(h.startswith(base) for h in hrefs), hrefs


def rows(page: Any, table: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr", "rs => rs.map(r => r.dataset.number || r.dataset.id)"
    )


def test_studies_page(
    page: Any, base_url: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    page.goto(base_url + "/")
    page.wait_for_selector(f"#studies tr[data-id='{seeded.completed_id}']")
    assert sorted(rows(page, "studies")) == sorted(
        [str(seeded.completed_id), str(seeded.running_id)]
    )
    completed = page.inner_text(f"#studies tr[data-id='{seeded.completed_id}']")
    assert "random + asha" in completed and "2 pruned" in completed and "1 failed" in completed
    assert re.search(r"\b0\.\d{1,4} \(max val_accuracy\)", completed), completed
    # Started and duration: the last two columns.
    started, took = page.eval_on_selector_all(
        f"#studies tr[data-id='{seeded.completed_id}'] td",
        "tds => tds.slice(-2).map(td => td.textContent)",
    )
    assert started != "—" and re.fullmatch(r"\d+ s|\d+ min \d+ s", took), (started, took)
    well_formed(page)
    page.screenshot(path=screenshot_dir / "studies.png", full_page=True)
    page.select_option("#status-filter", "running")
    page.wait_for_function("document.querySelectorAll('#studies tbody tr').length === 1")
    assert rows(page, "studies") == [str(seeded.running_id)]
    assert page.errors == []


def test_study_page_plots(
    page: Any, base_url: str, db_file: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    with Repository(db_file) as repo:
        best = repo.best_trial(seeded.completed_id)
    assert best is not None
    page.goto(f"{base_url}/studies/{seeded.completed_id}")
    page.wait_for_selector("#trials tbody tr")
    assert len(rows(page, "trials")) == 12
    # One trace (and legend entry) per status, each its own colour and marker, and the
    # best-so-far line (finished trials only).
    traces(page, "plot-history", 4)
    history = page.evaluate(
        "document.getElementById('plot-history').data.map(t => [t.name, t.x.length,"
        " t.marker?.symbol ?? null, t.marker?.color ?? null])"
    )
    assert [row[:3] for row in history[:3]] == [
        ["completed", 9, "circle"],
        ["pruned (stopped early)", 2, "x"],
        ["failed", 1, "diamond"],
    ]
    assert history[3][0] == "best so far"
    assert len({row[3] for row in history[:3]}) == 3  # three distinct colours
    pruned_text = page.evaluate("document.getElementById('plot-history').data[1].text")
    assert pruned_text == [f"trial {n} · pruned at epoch 2" for n in PRUNED]
    # The legend is drawn: its entries are in the SVG.
    legend = page.eval_on_selector_all(
        "#plot-history .legend .legendtext", "els => els.map(e => e.textContent)"
    )
    assert legend == ["completed", "pruned (stopped early)", "failed", "best so far"]
    # Every trial reported at least one epoch (12 lines, coloured and dashed by status);
    # one trace marks where the two pruned ones were stopped, then the legend: a line per
    # status and the best trial.
    traces(page, "plot-curves", 17)
    stops = page.evaluate(
        "document.getElementById('plot-curves').data"
        ".find(t => t.name === 'stopped by the scheduler').x"
    )
    assert stops == [2, 2]
    curve_legend = page.eval_on_selector_all(
        "#plot-curves .legend .legendtext", "els => els.map(e => e.textContent)"
    )
    assert curve_legend == [
        "stopped by the scheduler",
        "completed",
        "pruned (stopped early)",
        "failed",
        f"best: trial {best.number}",
    ]
    traces(page, "plot-lr", 12)  # the learning-rate trace of every trial
    traces(page, "plot-importance", 1)
    # 9 completed and 2 pruned trials: the note counts them apart.
    assert "(9 completed, 2 pruned" in page.inner_text("#importance-note")
    # The values' empirical distribution, completed and pruned trials apart.
    traces(page, "plot-ecdf", 2)
    ecdf = page.evaluate("document.getElementById('plot-ecdf').data.map(t => [t.name, t.y.at(-1)])")
    assert ecdf == [["completed (9)", 1], ["pruned (stopped early) (2)", 1]]
    # Slices: one trace per hyperparameter and status; each status once in the legend.
    traces(page, "plot-slice", 9)
    slice_legend = page.eval_on_selector_all(
        "#plot-slice .legend .legendtext", "els => els.map(e => e.textContent)"
    )
    assert slice_legend == ["completed", "pruned (stopped early)", "failed"]
    # Parallel coordinates: one polyline per trial with a value (12: 9 completed, 2 pruned,
    # 1 failed), across the 3 hyperparameters and the objective, dashed by status, and the
    # best one drawn on top.
    page.wait_for_function("(document.getElementById('plot-parallel')?.data || []).length > 2")
    lines = page.evaluate(
        "document.getElementById('plot-parallel').data"
        ".filter(t => t.mode === 'lines' && !t.showlegend).map(t => [t.line.dash, t.x])"
    )
    assert sum(x.count(None) for _, x in lines) == 12
    dashes = {dash: sum(x.count(None) for d, x in lines if d == dash) for dash, _ in lines}
    assert dashes == {"solid": 9, "dot": 2, "dashdot": 1}
    parallel_legend = page.eval_on_selector_all(
        "#plot-parallel .legend .legendtext", "els => els.map(e => e.textContent)"
    )
    assert parallel_legend == [
        "completed",
        "pruned (stopped early)",
        "failed",
        f"best: trial {best.number}",
    ]
    lines = [x for _, x in lines]
    assert all(x is None or x in (0, 1, 2, 3) for trace in lines for x in trace)
    assert page.evaluate(
        "document.getElementById('plot-parallel').data.some("
        f"t => t.name === 'best: trial {best.number}')"
    )
    spec = page.text_content("#spec")  # in the folded <details>
    assert "loguniform: [0.0001, 0.3]" in spec and "mode: max" in spec
    command = page.inner_text("#command")
    # The reproduce command retrains the best trial from the database (hpo train --trial).
    assert command == f"hpo train --trial {seeded.completed_id}/{best.number}"
    # The learning curve of a pruned trial stops at its last epoch (2 of 5).
    pruned_x = page.evaluate(
        f"document.getElementById('plot-curves').data"
        f".find(t => t.name.startsWith('trial {PRUNED[0]} ')).x"
    )
    assert pruned_x == [1, 2]
    # Axes name the objective's definition; learning rates are on a log axis by default,
    # accuracy on a linear one, and a button switches each.
    layout = "document.getElementById('{}').layout.{}"
    assert page.evaluate(layout.format("plot-history", "yaxis.title.text")) == (
        "val_accuracy, last epoch"
    )
    assert page.evaluate(layout.format("plot-slice", "yaxis.title.text")) == (
        "val_accuracy, last epoch"
    )
    assert page.evaluate(layout.format("plot-history", "yaxis.type")) == "linear"
    assert page.evaluate(layout.format("plot-lr", "yaxis.type")) == "log"
    assert page.get_attribute("button.scale[data-plot='plot-lr']", "aria-pressed") == "true"
    page.click("button.scale[data-plot='plot-lr']")
    page.wait_for_function(layout.format("plot-lr", "yaxis.type") + " === 'linear'")
    assert page.get_attribute("button.scale[data-plot='plot-lr']", "aria-pressed") == "false"
    page.click("button.scale[data-plot='plot-history']")
    page.wait_for_function(layout.format("plot-history", "yaxis.type") + " === 'log'")
    # The table: a marker per status, and the epoch a pruned or failed trial stopped at.
    status_cell = page.inner_text(f"#trials tr[data-number='{PRUNED[0]}'] td:nth-child(2)")
    assert status_cell.replace("\n", " ") == "✕pruned at epoch 2", status_cell
    well_formed(page)
    page.screenshot(path=screenshot_dir / "study.png", full_page=True)
    no_cloud(page)
    # Every plot is a figure named by what it shows now, for screen readers.
    names = labelled(page)
    assert set(names) == {
        "plot-history",
        "plot-curves",
        "plot-parallel",
        "plot-contour",
        "plot-importance",
        "plot-ecdf",
        "plot-lr",
        "plot-slice",
    }
    assert names["plot-history"].startswith(
        "Optimization history: val_accuracy, last epoch of 12 trials by trial number "
        "(9 completed, 2 pruned, 1 failed); the best so far reaches "
    ) and names["plot-history"].endswith(f" at trial {best.number}.")
    assert names["plot-curves"].startswith(
        "Learning curves: val_accuracy per epoch of 12 trials (9 completed, 2 pruned, 1 failed)"
    )
    assert "drag along an axis to select trials" in names["plot-parallel"]
    assert page.errors == []


def test_plot_points_open_their_trial(page: Any, base_url: str, seeded: SeededStudies) -> None:
    """A real mouse click on a marker of the history opens that trial's page; the other
    plots' points (and lines) carry their trial and follow the same click."""
    study = f"{base_url}/studies/{seeded.completed_id}"
    page.goto(study)
    traces(page, "plot-history", 4)
    # Where the marker of pruned trial 3 is on the screen (trace 1: the pruned ones).
    x, y = page.evaluate(
        """(() => {
          const d = document.getElementById('plot-history');
          const t = d.data[1], i = t.customdata.indexOf(3);
          const xa = d._fullLayout.xaxis, ya = d._fullLayout.yaxis;
          const box = d.getBoundingClientRect();
          return [box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i])];
        })()"""
    )
    page.mouse.move(x, y)
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert page.url == f"{study}/trials/3"
    page.wait_for_selector("#trial-status .status")
    for div, number in [("plot-slice", 5), ("plot-curves", 4), ("plot-parallel", 8)]:
        page.goto(study)
        page.wait_for_function(f"(document.getElementById('{div}')?.data || []).length > 2")
        page.wait_for_function(f"document.getElementById('{div}').classList.contains('linked')")
        with page.expect_navigation():
            page.evaluate(
                f"document.getElementById('{div}').emit('plotly_click',"
                f" {{points: [{{customdata: {number}}}]}})"
            )
        assert page.url == f"{study}/trials/{number}", div
    assert page.errors == []


def test_study_layout_and_table(
    browser: Any, base_url: str, db_file: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    """Best trial and plots first, the spec folded; at 1,440 px the trials table fits, its
    # column is sticky, the best row is marked, headers are unique and numbers share one
    format."""
    with Repository(db_file) as repo:
        best = repo.best_trial(seeded.completed_id)
    assert best is not None
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base_url}/studies/{seeded.completed_id}")
    page.wait_for_selector("#trials tbody tr")
    traces(page, "plot-history", 4)
    top = page.evaluate(
        "Object.fromEntries(['#best', '#plot-history', '#trials', '#spec-details'].map("
        "s => [s, document.querySelector(s).getBoundingClientRect().top + scrollY]))"
    )
    assert top["#best"] < top["#plot-history"] < top["#trials"] < top["#spec-details"], top
    assert top["#plot-history"] < 600, top  # the first plot in the first screen
    assert page.get_attribute("#spec-details", "open") is None  # folded
    assert "loguniform" in page.text_content("#spec")
    fits = page.evaluate(
        "(() => { const s = document.querySelector('#trials').closest('.scroll');"
        " return [s.scrollWidth, s.clientWidth]; })()"
    )
    assert fits[0] <= fits[1], fits
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('#trials tbody tr > :first-child')).position"
        )
        == "sticky"
    )
    marked = page.eval_on_selector_all("#trials tr.best", "rs => rs.map(r => r.dataset.number)")
    assert marked == [str(best.number)]
    assert "★" in page.inner_text(f"#trials tr[data-number='{best.number}'] > :first-child")
    headers = page.eval_on_selector_all(
        "#trials thead th", "ths => ths.map(th => th.textContent.replace(/ [▲▼]$/, ''))"
    )
    assert len(headers) == len(set(headers)), headers
    assert "lr" in headers and "final lr" in headers
    # One format: 4 significant digits, exponent form below 1e-3 (lr of trial 1 is
    # 10 ** -3.4, of trial 5 1e-4, of trial 2 10 ** -2.8).
    lr = {n: page.inner_text(f"#trials tr[data-number='{n}'] td:nth-child(3)") for n in (1, 2, 5)}
    assert lr == {1: "3.981e-4", 2: "0.001585", 5: "1e-4"}, lr
    numbers = page.eval_on_selector_all("#trials td.num", "tds => tds.map(td => td.textContent)")
    pattern = re.compile(r"-?(\d+|\d*\.\d+|\d(\.\d+)?e-?\d+)")
    assert numbers and all(pattern.fullmatch(n) for n in numbers), numbers
    significant = [
        len(n.split("e")[0].replace(".", "").replace("-", "").lstrip("0")) for n in numbers
    ]
    assert max(significant) <= 4, numbers
    page.screenshot(path=screenshot_dir / "study-1440.png")
    # The column chooser hides a column, and the choice survives a reload.
    page.click("#column-chooser summary")
    page.uncheck("#column-list input[data-column='final train_loss']")
    page.wait_for_function(
        "![...document.querySelectorAll('#trials thead th')]"
        ".some(th => th.textContent.startsWith('final train_loss'))"
    )
    assert page.locator("#trials tbody tr:first-child > *").count() == len(headers) - 1
    page.reload()
    page.wait_for_selector("#trials tbody tr")
    after = page.eval_on_selector_all("#trials thead th", "ths => ths.map(th => th.textContent)")
    assert len(after) == len(headers) - 1 and not any("train_loss" in h for h in after)
    page.evaluate("localStorage.clear()")
    context.close()


def test_study_sort_and_filter(page: Any, base_url: str, seeded: SeededStudies) -> None:
    page.goto(f"{base_url}/studies/{seeded.completed_id}")
    page.wait_for_selector("#trials tbody tr")
    assert rows(page, "trials")[:3] == ["1", "2", "3"]
    sort = page.locator("button.sort[data-sort='best_value']")
    sort.focus()
    page.keyboard.press("Enter")  # the sort buttons work from the keyboard
    page.wait_for_function("document.querySelector('#trials tbody tr').dataset.number !== '1'")
    # The keyboard stays on the column's (redrawn) button, and Enter sorts it again.
    assert page.evaluate("document.activeElement.dataset.sort") == "best_value"
    by_value = rows(page, "trials")
    values = page.eval_on_selector_all(
        "#trials tbody tr", "rs => rs.map(r => r.children[5].textContent)"
    )
    finite = [float(v) for v in values if v != "—"]
    assert finite == sorted(finite, reverse=True)  # mode max: best first
    assert page.get_attribute("th[aria-sort]", "aria-sort") == "descending"
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelector('#trials tbody tr').dataset.number !== '{by_value[0]}'"
    )
    # A column per final metric (the objective's is "last"), sortable like the others:
    # final val_loss is 2.2 / epochs + 0.05, so the 5-epoch trials come first, then the
    # two pruned after 2 epochs, then the one that failed after 1.
    headers = page.eval_on_selector_all("#trials thead th", "ths => ths.map(th => th.textContent)")
    assert {"final lr", "final train_loss", "final val_loss"} <= set(headers)
    assert "final val_accuracy" not in headers
    page.locator("button.sort[data-sort='val_loss']").click()
    page.wait_for_selector("th[aria-sort] button[data-sort='val_loss']")
    page.wait_for_function(
        f"document.querySelector('#trials tbody tr:last-child').dataset.number === '{FAILED}'"
    )
    assert rows(page, "trials")[-3:] == [str(PRUNED[0]), str(PRUNED[1]), str(FAILED)]
    # Hyperparameter columns sort too (hidden = 32 * (1 + number % 8): trial 8 has 32).
    page.locator("button.sort[data-sort='param:hidden']").click()
    page.wait_for_function("document.querySelector('#trials tbody tr').dataset.number === '8'")
    assert rows(page, "trials")[:5] == ["8", "1", "9", "2", "10"]
    page.select_option("#trial-status", "pruned")
    page.wait_for_function("document.querySelectorAll('#trials tbody tr').length === 2")
    assert sorted(rows(page, "trials"), key=int) == [str(n) for n in PRUNED]
    page.select_option("#trial-status", "failed")
    page.wait_for_function("document.querySelectorAll('#trials tbody tr').length === 1")
    assert rows(page, "trials") == [str(FAILED)]
    assert page.errors == []


def test_trial_page(
    page: Any, base_url: str, db_file: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    page.goto(f"{base_url}/studies/{seeded.completed_id}/trials/1")
    traces(page, "plot-loss", 2)  # train_loss, val_loss
    traces(page, "plot-accuracy", 1)
    traces(page, "plot-lr", 1)
    # Losses and the learning rate on log axes by default, each with its switch.
    layout = "document.getElementById('{}').layout.{}"
    assert page.evaluate(layout.format("plot-loss", "yaxis.type")) == "log"
    assert page.evaluate(layout.format("plot-lr", "yaxis.type")) == "log"
    assert page.evaluate(layout.format("plot-accuracy", "yaxis.type")) == "linear"
    page.click("button.scale[data-plot='plot-loss']")
    page.wait_for_function(layout.format("plot-loss", "yaxis.type") + " === 'linear'")
    assert page.locator("button.scale[data-plot='plot-accuracy']").count() == 0
    assert "test-host" in page.inner_text("#provenance")
    assert "adam" in page.inner_text("#config")
    events = page.inner_text("#content #events")
    assert "trial 1 started" in events and "trial 1 completed" in events
    well_formed(page)
    page.screenshot(path=screenshot_dir / "trial.png", full_page=True)
    no_cloud(page)
    assert labelled(page)["plot-loss"] == (
        "Losses per epoch: train_loss and val_loss at each of the trial's 5 epochs."
    )
    # Axes labelled, whole epochs on the x axis.
    assert page.evaluate(layout.format("plot-loss", "yaxis.title.text")) == "loss"
    assert page.evaluate(layout.format("plot-lr", "yaxis.title.text")) == "learning rate"
    assert page.evaluate(layout.format("plot-accuracy", "yaxis.title.text")) == "val_accuracy"
    ticks = page.eval_on_selector_all(
        "#plot-accuracy .xtick text", "ts => ts.map(t => t.textContent)"
    )
    assert ticks == ["1", "2", "3", "4", "5"]
    assert page.is_hidden("#trial-stopped")
    # Long values wrap inside their card.
    assert (
        page.evaluate("getComputedStyle(document.querySelector('#provenance td')).overflowWrap")
        == "anywhere"
    )
    # A pruned trial: why and when it stopped, marked on its plots; the driver's event
    # naming it by its Ray key reads with its number.
    with Repository(db_file) as repo:
        pruned = repo.get_trial(seeded.completed_id, PRUNED[0])
        repo.add_event(
            seeded.completed_id,
            "trial_pruned",
            "trial 1a2b3c:train_fn_a1b2c_00002 pruned after 2 epochs",
            trial_id=pruned.id,
        )
    page.goto(f"{base_url}/studies/{seeded.completed_id}/trials/{PRUNED[0]}")
    page.wait_for_selector("#trial-stopped:not([hidden])")
    assert page.inner_text("#trial-stopped") == (
        "Stopped early by the ASHA scheduler at epoch 2 of 5: its val_accuracy at that rung "
        "was not in the best 1/3 of the trials that reached it."
    )
    traces(page, "plot-accuracy", 1)
    assert page.evaluate(layout.format("plot-accuracy", "shapes[0].x0")) == 2
    # Where the scheduler said why, with its numbers, the page says that.
    page.goto(f"{base_url}/studies/{seeded.completed_id}/trials/{PRUNED[1]}")
    page.wait_for_selector("#trial-stopped:not([hidden])")
    assert page.inner_text("#trial-stopped") == (
        "Stopped by ASHA at the rung of epoch 2: val_accuracy 0.4425 below the rung's "
        "cut-off 0.6512 (the best 1/3 of the 9 trials there go on); at epoch 2 of 5."
    )
    page.goto(f"{base_url}/studies/{seeded.completed_id}/trials/{PRUNED[0]}")
    page.wait_for_selector("#trial-stopped:not([hidden])")
    traces(page, "plot-accuracy", 1)
    assert page.eval_on_selector_all(
        "#plot-accuracy .xtick text", "ts => ts.map(t => t.textContent)"
    ) == ["1", "2"]  # not 1.2, 1.4, …
    events = page.inner_text("#events")
    assert f"trial {PRUNED[0]} pruned after 2 epochs" in events and "1a2b3c" not in events
    page.screenshot(path=screenshot_dir / "trial-pruned.png", full_page=True)
    page.goto(f"{base_url}/studies/{seeded.completed_id}/trials/{FAILED}")
    page.wait_for_selector("#trial-error:not([hidden])")
    assert "loss became NaN" in page.inner_text("#trial-error")
    page.screenshot(path=screenshot_dir / "trial-failed.png", full_page=True)
    assert page.errors == []


def test_compare_page(
    page: Any, base_url: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    page.goto(f"{base_url}/studies/{seeded.completed_id}/compare?trials=1,2,4")
    traces(page, "plot-compare", 3)
    # Whole epochs on the axis (not 1.5, 2.5); each line named and dashed by its status.
    ticks = page.eval_on_selector_all(
        "#plot-compare .xtick text", "ts => ts.map(t => t.textContent)"
    )
    assert ticks == ["1", "2", "3", "4", "5"]
    lines = page.evaluate(
        "document.getElementById('plot-compare').data.map(t => [t.name, t.line.dash])"
    )
    assert lines == [[f"trial {n} (completed)", "solid"] for n in (1, 2, 4)]
    assert page.get_attribute("tr[data-field='optimizer']", "class") == "differs"
    assert page.get_attribute("tr[data-field='batch_size']", "class") is None
    well_formed(page)
    page.screenshot(path=screenshot_dir / "compare.png", full_page=True)
    no_cloud(page)
    assert labelled(page) == {
        "plot-compare": "Objective per epoch of the compared trials: val_accuracy per epoch of "
        "trials 1, 2 and 4, one line each (trial 1: 5 epochs, trial 2: 5 epochs, "
        "trial 4: 5 epochs)."
    }
    assert page.errors == []


def test_parallel_coordinates_with_conditional_parameters(
    page: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    """`momentum` exists for one optimizer only: its axis stays numeric, with readable ticks
    and a separate "—" tick for the trials without it; `lr` is a log axis ticked in real
    values; the colour bar's title stands clear of its ticks."""
    url = f"sqlite:///{tmp_path / 'conditional.db'}"
    spec = {
        **SPEC,
        "name": "conditional",
        "space": {
            "optimizer": {"choice": ["sgd", "momentum", "adam"]},
            "lr": {"loguniform": [1.0e-4, 0.3]},
            "momentum": {"uniform": [0.5, 0.99], "when": {"optimizer": ["momentum"]}},
        },
    }
    with Repository(url) as repo:
        study = service.submit_study(repo, load_spec(spec), owner=None)
        for n in range(6):
            config: dict[str, Any] = {"optimizer": ["sgd", "momentum", "adam"][n % 3]}
            config["lr"] = 1.234567890123e-4 * 10 ** (n * 0.5)
            if config["optimizer"] == "momentum":
                config["momentum"] = 0.5123456789012345 + 0.3 * n / 5
            trial = repo.create_trial(
                study.id, config=config, seed=n, ray_trial_id=None, provenance={}
            )
            repo.record_results(
                [ResultRow(trial.id, 1, {"val_accuracy": 0.5 + n / 20}, 0.5 + n / 20)]
            )
            repo.finish_trial(trial.id, "completed")
    with live_server(create_app(url, settings=Settings())) as base:
        page.goto(f"{base}/studies/{study.id}")
        page.wait_for_function("(document.getElementById('plot-parallel')?.data || []).length > 2")
        annotations = page.evaluate(
            "document.getElementById('plot-parallel').layout.annotations"
            ".map(a => [a.x, a.y, a.text])"
        )
        axes = [text for _, _, text in annotations if text.startswith("<b>")]
        assert axes == [
            "<b>optimizer</b>",
            "<b>lr (log)</b>",
            "<b>momentum</b>",
            "<b>val_accuracy, last epoch</b>",
        ]
        ticks = {
            axis: [text for x, _, text in annotations if x == axis and not text.startswith("<b>")]
            for axis in range(4)
        }
        assert ticks[0] == ["adam", "momentum", "sgd"]
        assert ticks[1] == ["0.001", "0.01"]  # lr from 1.2e-4 to 0.039: the decades inside
        assert ticks[2][-1] == "—" and ticks[2][:-1] == ["0.6", "0.65", "0.7", "0.75"]
        assert all(len(t) <= 6 for axis in (1, 2, 3) for t in ticks[axis]), ticks  # no 16 digits
        # Trials without momentum sit on the "—" tick, below the axis.
        dash_y = next(y for x, y, text in annotations if x == 2 and text == "—")
        lines = page.evaluate(
            "document.getElementById('plot-parallel').data"
            ".filter(t => t.mode === 'lines' && !t.showlegend).flatMap(t => t.x.map((x, i) =>"
            " [x, t.y[i], t.customdata[i]]))"
        )
        at_momentum = {n: y for x, y, n in lines if x == 2}
        assert sorted(n for n, y in at_momentum.items() if y == dash_y) == [1, 3, 4, 6]
        assert all(0 <= y <= 1 for n, y in at_momentum.items() if n in (2, 5))
        colorbar = page.evaluate(
            "document.getElementById('plot-parallel').data.at(-1).marker.colorbar.title"
        )
        assert colorbar == {"text": "val_accuracy, last epoch", "side": "right"}
        page.locator("#plot-parallel").screenshot(path=screenshot_dir / "parallel-conditional.png")
        # The contour of lr and momentum: only the trials where both are active (2 and 5).
        page.select_option("#contour-x", "lr")
        page.select_option("#contour-y", "momentum")
        page.wait_for_function(
            "document.getElementById('plot-contour').layout.yaxis.title.text === 'momentum'"
        )
        contour = page.evaluate(
            "document.getElementById('plot-contour').data.map(t => [t.type, t.customdata])"
        )
        assert contour[0][0] == "contour"
        assert sorted(n for kind, numbers in contour if kind == "scatter" for n in numbers) == [
            2,
            5,
        ]
        assert "between the 2 completed trials that set both lr and momentum" in page.inner_text(
            "#contour-note"
        )
        assert page.errors == []
        page.goto("about:blank")


def test_study_actions(page: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    """On the study page: export links that download CSV and JSON, cancel for a queued
    study, delete behind a confirmation that can be declined, and clone into the New
    study form."""
    url = f"sqlite:///{tmp_path / 'actions.db'}"
    seeded = seed_dashboard(url)
    with Repository(url) as repo:
        queued = service.submit_study(repo, load_spec({**SPEC, "name": "to-cancel"}), owner=None)
    # The seeded spec's trainable is a function: REST accepts it from allowed modules only.
    settings = Settings(allowed_modules=("hpo.examples",))
    with live_server(create_app(url, settings=settings)) as base:
        page.goto(f"{base}/studies/{seeded.completed_id}")
        page.wait_for_selector("#trials tbody tr")
        assert page.is_hidden("#cancel-study")  # completed: nothing to cancel
        assert re.fullmatch(r"ran \d+ s", page.inner_text("#elapsed"))
        for kind, media in [("csv", "text/csv"), ("json", "application/json")]:
            with page.expect_download() as download:
                page.click(f"#export-{kind}")
            assert download.value.suggested_filename == f"study-{seeded.completed_id}.{kind}"
            text = Path(download.value.path()).read_text()
            assert text.startswith("number," if kind == "csv" else "{"), text[:80]
            response = page.request.get(base + page.get_attribute(f"#export-{kind}", "href"))
            assert response.headers["content-type"].startswith(media)
        # A running study can be cancelled, not deleted, and shows how long it has run.
        page.goto(f"{base}/studies/{seeded.running_id}")
        page.wait_for_selector("#elapsed:has-text('running for')")
        assert page.is_visible("#cancel-study") and page.is_hidden("#delete-study")
        page.goto("about:blank")  # close its events stream
        page.goto(f"{base}/studies/{queued.id}")
        page.wait_for_selector("#cancel-study:not([hidden])")
        assert page.inner_text("#elapsed") == "waiting for a runner"
        page.click("#cancel-study")
        page.wait_for_selector("#study-status:has-text('cancelled')")
        assert page.is_hidden("#cancel-study")
        with Repository(url) as repo:
            assert repo.get_study(queued.id).status == "cancelled"
        page.click("#delete-study")
        page.wait_for_selector("#confirm-delete[open]")
        page.screenshot(path=screenshot_dir / "study-delete-confirm.png")
        page.click("#confirm-delete button[value='keep']")  # declined: nothing happens
        page.wait_for_selector("#confirm-delete:not([open])", state="attached")
        with Repository(url) as repo:
            assert repo.get_study(queued.id).status == "cancelled"
        page.click("#delete-study")
        with page.expect_navigation():
            page.click("#confirm-delete-yes")
        assert page.url == base + "/"
        with Repository(url) as repo:
            assert [s.id for s in repo.list_studies()] == [seeded.running_id, seeded.completed_id]
        assert page.errors == []
        # Clone: the completed study's spec, renamed, in the New study form; submitted as is
        # it makes a queued study with the same search space.
        page.goto(f"{base}/studies/{seeded.completed_id}")
        with page.expect_navigation():
            page.click("#clone-study")
        page.wait_for_function(
            "document.querySelector('#new-study-spec').value.includes('mlp-dashboard-copy')"
        )
        assert page.get_attribute("#new-study", "open") is not None
        with page.expect_navigation():
            page.click("#new-study-form button[type=submit]")
        page.wait_for_selector("#study-title:has-text('mlp-dashboard-copy')")
        with Repository(url) as repo:
            clone, original = repo.list_studies()[0], repo.get_study(seeded.completed_id)
        assert clone.name == "mlp-dashboard-copy" and clone.status == "queued"
        assert clone.spec["space"] == original.spec["space"]
        assert clone.spec["budget"] == original.spec["budget"]
        assert page.errors == []
        page.goto("about:blank")


def test_skip_link(page: Any, base_url: str, seeded: SeededStudies) -> None:
    """The first Tab stop skips the header: Enter moves the focus to the page's content."""
    page.goto(f"{base_url}/studies/{seeded.completed_id}")
    page.wait_for_selector("#trials tbody tr")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.is_visible(".skip-link")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    page.goto("about:blank")


def test_unknown_pages_are_html_404(
    page: Any, base_url: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    for path in (
        "/studies/9999",
        f"/studies/{seeded.completed_id}/trials/999",
        "/studies/abc",
        "/studies/9999/compare?trials=1,2",
    ):
        response = page.goto(base_url + path)
        assert response.status == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert page.inner_text("#content h1") == "Not found"
    # Any unknown dashboard URL answers the same HTML page; the API keeps its JSON errors.
    for path in ("/nope", f"/studies/{seeded.completed_id}/nonsense", "/trials/1"):
        response = page.goto(base_url + path)
        assert response.status == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert page.inner_text("#content h1") == "Not found"
        assert path in page.inner_text("#content")
        assert page.is_visible("a[href='/']")
    page.screenshot(path=screenshot_dir / "not-found.png", full_page=True)
    for path in ("/api/v1/nope", "/nope"):
        api = httpx.get(base_url + path, headers={"Accept": "application/json"}, timeout=10)
        assert api.status_code == 404 and api.json() == {
            "detail": [{"field": "", "message": "not found"}]
        }, path
    api = httpx.get(base_url + "/api/v1/nope", headers={"Accept": "text/html"}, timeout=10)
    assert api.headers["content-type"].startswith("application/json")
    assert httpx.post(base_url + "/nope", timeout=10).status_code == 404
    # compare?trials=0,1: trial 0 does not exist (numbers start at 1).
    response = page.goto(f"{base_url}/studies/{seeded.completed_id}/compare?trials=0,1")
    assert response.status == 404
    assert f"no trial 0 in study {seeded.completed_id}" in page.inner_text("#content")
    response = page.goto(f"{base_url}/studies/{seeded.completed_id}/compare?trials=1")
    assert response.status == 400


def test_running_study_updates_live(
    page: Any, base_url: str, db_file: str, seeded: SeededStudies, screenshot_dir: Path
) -> None:
    page.goto(f"{base_url}/studies/{seeded.running_id}")
    page.wait_for_selector("#trials tbody tr")
    assert rows(page, "trials") == ["1", "2"]
    traces(page, "plot-history", 2)
    page.evaluate("window.__same_document = true")
    with Repository(db_file) as repo:
        number = add_trial(repo, seeded.running_id, "completed", 5)
        running = add_trial(repo, seeded.running_id, "running", 3)
    page.wait_for_selector(f"#trials tr[data-number='{running}']")
    assert page.evaluate("window.__same_document") is True  # no reload happened
    # A running trial is drawn as it reports, in its own style and legend entry.
    page.wait_for_function(
        "document.getElementById('plot-curves').data"
        ".filter(t => t.name.startsWith('trial ')).length === 4"
    )
    page.wait_for_function(
        "document.getElementById('plot-history').data.some(t => t.name === 'running')"
    )
    history = page.evaluate(
        "document.getElementById('plot-history').data.map(t => [t.name, t.customdata])"
    )
    assert history[:2] == [["completed", [1, 2, number]], ["running", [running]]]
    assert f"trial {running} · running, epoch 3" in page.evaluate(
        "document.getElementById('plot-history').data[1].text"
    )
    # Trial numbers on the history's axis are whole (4 trials: 1, 2, 3, 4, not 1.5).
    ticks = page.eval_on_selector_all(
        "#plot-history .xtick text", "ts => ts.map(t => t.textContent)"
    )
    assert ticks and all(t.isdigit() for t in ticks), ticks
    page.screenshot(path=screenshot_dir / "study-running.png", full_page=True)
    assert page.errors == []
    page.goto("about:blank")  # close the events stream before the server stops


def test_empty_states(page: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with live_server(create_app(url, settings=Settings())) as base:
        page.goto(base + "/")
        page.wait_for_selector("#empty:not([hidden])")
        page.screenshot(path=screenshot_dir / "studies-empty.png", full_page=True)
        with Repository(url) as repo:
            study = service.submit_study(repo, load_spec(SPEC), owner=None)
        page.goto(f"{base}/studies/{study.id}")
        page.wait_for_selector("#plots-empty:not([hidden])")
        page.wait_for_selector("#trials-empty:not([hidden])")
        assert page.errors == []
        page.goto("about:blank")  # close the events stream before the server stops


def test_new_study_form(page: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    """The form on / posts YAML to the API: field errors are listed under it, a valid spec
    opens the new (queued) study's page."""
    url = f"sqlite:///{tmp_path / 'form.db'}"
    with live_server(create_app(url, settings=Settings())) as base:
        page.goto(base + "/")
        page.click("#new-study summary")
        example = page.input_value("#new-study-spec")
        assert load_spec(yaml.safe_load(example)).name == "my-search"  # a valid default
        bad = example.replace("loguniform: [1.0e-4, 0.3]", "loguniform: [0, 0.3]").replace(
            "schedule: cosine", "schedule: sideways"
        )
        page.fill("#new-study-spec", bad)
        page.click("#new-study-form button[type=submit]")
        page.wait_for_selector("#new-study-errors li")
        errors = page.inner_text("#new-study-errors")
        assert "space.lr.loguniform" in errors and "fixed.schedule" in errors, errors
        assert page.get_attribute("#new-study-spec", "aria-invalid") == "true"
        page.screenshot(path=screenshot_dir / "new-study-errors.png", full_page=True)
        page.errors.clear()  # the browser logs the refused POST (422) to the console
        page.fill("#new-study-spec", "name: [unclosed")
        page.click("#new-study-form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('#new-study-errors').textContent.includes('YAML')"
        )
        page.errors.clear()
        page.fill("#new-study-spec", example)
        page.click("#new-study-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/studies/\d+$"))
        page.wait_for_selector("#study-title:has-text('my-search')")
        assert "queued" in page.inner_text("#study-status")
        with Repository(url) as repo:
            (study,) = repo.list_studies()
        assert study.name == "my-search" and study.status == "queued"
        assert page.errors == []
        page.goto("about:blank")  # close the events stream before the server stops


def test_login_required_with_tokens(page: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    seeded = seed_dashboard(url)
    with Repository(url) as repo:
        token = service.create_token(repo, "root", admin=True)
    with live_server(create_app(url, settings=Settings())) as base:
        page.goto(f"{base}/studies/{seeded.completed_id}")
        page.wait_for_selector("#login:not([hidden])")
        assert page.is_hidden("#content")
        page.screenshot(path=screenshot_dir / "login.png", full_page=True)
        page.fill("#token", "wrong-token")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#login-error:has-text('not accepted')")
        page.errors.clear()  # the refused attempt logs its 401 to the console
        page.fill("#token", token)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#trials tbody tr")
        traces(page, "plot-history", 4)  # completed, pruned, failed, best so far
        page.goto(f"{base}/")  # the token stays for the tab's session
        page.wait_for_selector(f"#studies tr[data-id='{seeded.completed_id}']")
        assert page.is_hidden("#login")
        assert page.errors == []

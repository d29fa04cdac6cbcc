"""Helpers of the browser tests: waiting for a plot's traces, reading the plots' names."""

from __future__ import annotations

from typing import Any

TIMEOUT_MS = 15_000


def traces(page: Any, div: str, count: int) -> None:
    """Wait until the Plotly chart in `div` has exactly `count` traces."""
    page.wait_for_function(
        f"() => (document.getElementById('{div}')?.data || []).length === {count}",
        timeout=TIMEOUT_MS,
    )


def labelled(page: Any) -> dict[str, str]:
    """Every plot on the page, visible or not, is a named figure for screen readers, whose
    name says what it shows ("Optimization history: …", more than its title); returns the
    names of the visible ones by id."""
    plots = page.eval_on_selector_all(
        ".plot",
        "ds => ds.map(d => [d.id, d.getAttribute('role'), d.getAttribute('aria-label'),"
        " d.dataset.name, d.closest('[hidden]') === null])",
    )
    assert plots, "no plot on the page"
    names = {}
    for div, role, label, name, visible in plots:
        assert role == "figure", div
        assert label and label.startswith(name), (div, label)
        if visible:
            assert label.startswith(f"{name}: ") and len(label) > len(name) + 10, (div, label)
            names[div] = label
    return names

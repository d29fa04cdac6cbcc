"""The dashboard's assets over plain HTTP: Plotly's bundle comes from this server (no CDN),
under versioned URLs that browsers may cache for a year."""

from __future__ import annotations

import re

import httpx

from api.dashboard.pages import PLOTLY_URL


def test_pages_name_a_versioned_plotly_bundle_served_here(base_url: str) -> None:
    html = httpx.get(f"{base_url}/studies/1", timeout=10).text
    assert f'<link rel="preload" href="{PLOTLY_URL}" as="script">' in html
    assert "cdn" not in html.lower()
    for url, header in [(PLOTLY_URL, "cartesian")]:
        assert re.fullmatch(r"/static/vendor/[\w.-]+\.js\?v=[0-9a-f]{12}", url)
        response = httpx.get(base_url + url, timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert "immutable" in response.headers["cache-control"]
        assert header in response.text[:200]


def test_unknown_vendor_file_is_404(base_url: str) -> None:
    assert httpx.get(f"{base_url}/static/vendor/nope.js", timeout=10).status_code == 404
    # Nothing outside the static folder, however the path is spelt.
    for path in ("/static/vendor/..%2F..%2Fpages.py", "/static/..%2Fpages.py"):
        assert httpx.get(base_url + path, timeout=10).status_code == 404, path

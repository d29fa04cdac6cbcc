"""The fixture that runs a test once per registered sampler."""

from __future__ import annotations

import pytest

from hpo.samplers import SAMPLERS


@pytest.fixture(params=list(SAMPLERS))
def sampler_name(request: pytest.FixtureRequest) -> str:
    """Every registered sampler, one test run each."""
    return str(request.param)

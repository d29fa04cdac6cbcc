"""Liveness and readiness: the one route that never needs a token."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RepoDep
from api.models import HealthPublic, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", responses=error_responses(503))
def healthz(repo: RepoDep) -> HealthPublic:
    """200 when the database answers a query (503 otherwise): for load balancers and
    container health checks, so it needs no token."""
    repo.list_studies(limit=1)
    return HealthPublic(status="ok", database=repo.engine.dialect.name)

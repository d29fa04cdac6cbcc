"""The routers of `/api/v1`, one per resource; this module only includes them."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import health, studies, trials

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(studies.router)
api_router.include_router(trials.router)

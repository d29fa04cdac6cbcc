"""Dependencies of the routes, as `Annotated` aliases: `RepoDep` (the one `Repository` of
the application) and `CurrentUser` (who is calling, or None while auth is disabled)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hpo import service
from hpo.config import Settings
from hpo.service import User
from hpo.storage.repository import Repository


def get_repo(request: Request) -> Repository:
    """The repository opened by the application's lifespan (thread-safe, shared)."""
    repo: Repository = request.app.state.repo
    return repo


def get_settings(request: Request) -> Settings:
    """The settings the application was built with (tests build apps with their own)."""
    settings: Settings = request.app.state.settings
    return settings


RepoDep = Annotated[Repository, Depends(get_repo)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: a missing or malformed header is answered by `current_user` with our
# own 401 body, and only when auth is enabled at all.
_bearer = HTTPBearer(
    auto_error=False,
    description="An API token; required once authentication is enabled.",
)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=[{"field": "header.Authorization", "message": message}],
        headers={"WWW-Authenticate": "Bearer"},
    )


def current_user(
    repo: RepoDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    """The caller, from `Authorization: Bearer <token>`; None while auth is disabled.

    With auth enabled a missing or unknown token is a 401 — the same answer for both, so
    a caller learns nothing about which tokens exist.
    """
    if not service.auth_enabled(repo):
        return None
    if credentials is None:
        raise _unauthorized("a bearer token is required")
    user = service.authenticate(repo, credentials.credentials)
    if user is None:
        raise _unauthorized("invalid or revoked token")
    return user


CurrentUser = Annotated[User | None, Depends(current_user)]


def storable_query(request: Request) -> None:
    """Refuse (422) a query value holding NUL, which PostgreSQL text cannot hold: it
    would otherwise reach a query as a driver error (503). Every route depends on this."""
    for name, value in request.query_params.multi_items():
        if "\x00" in value or "\x00" in name:
            shown = name.replace("\x00", "\\x00")
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=[{"field": f"query.{shown}", "message": "NUL is not allowed"}],
            )

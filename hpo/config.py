"""Settings from HPO_* environment variables: one place, read once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hpo.references import is_module_name

DEFAULT_DATABASE_URL = "sqlite:///./hpo.db"


class Settings(BaseSettings):
    """Everything a deployment configures. CLI flags override these per command."""

    model_config = SettingsConfigDict(env_prefix="HPO_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: SQLite file by default, postgresql+psycopg://… in production.",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster address (host:port or 'auto'); unset starts Ray locally."
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest request body the REST API reads; larger ones get 413 unread.",
    )
    validation_budget_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds the REST API spends validating one submitted spec; past this "
        "the spec is refused (422) and the work stops.",
    )
    max_active_studies_per_user: int = Field(
        20,
        ge=0,
        description="Queued plus running studies one user may have over REST (0: no limit); "
        "past it a submit answers 429 with Retry-After.",
    )
    max_concurrent_trials_per_user: int = Field(
        64,
        ge=0,
        description="Sum of budget.concurrency over one user's queued and running studies "
        "(0: no limit); past it a submit answers 429 with Retry-After.",
    )
    retry_after_s: int = Field(
        60, ge=1, description="Retry-After (seconds) of a 429 from the per-user limits."
    )
    allowed_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated modules (and their submodules) whose functions a spec "
        "posted over REST may name as trainable.function or dataset; none by default.",
    )
    api_token: str | None = Field(
        None,
        description="A token that authenticates as the admin user 'admin' (turns "
        "authentication on, like any token made with `hpo token create`).",
    )
    storage_retry_s: float = Field(
        300.0,
        ge=0,
        description="How long drivers and runners wait out a database outage (locked SQLite, "
        "a PostgreSQL restart) with backoff before giving the study back as queued.",
    )
    api_storage_retry_s: float = Field(
        5.0,
        ge=0,
        description="The same window for one REST request: a request waits this long for the "
        "database, then answers 503 (a client retries; a request never hangs for minutes).",
    )
    lease_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a driver's lease on its study lasts without a heartbeat; after "
        "that a runner or `hpo run --resume` may take the study over.",
    )
    host: str = Field("127.0.0.1", description="Address `hpo serve` binds.")
    port: int = Field(8000, ge=0, le=65535, description="Port `hpo serve` binds.")

    @field_validator("allowed_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        # An environment variable is one string: "pkg.a,pkg.b" rather than JSON.
        if isinstance(value, str):
            value = tuple(m.strip() for m in value.split(",") if m.strip())
        return value

    @field_validator("allowed_modules")
    @classmethod
    def _module_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # An entry that is not a module name could never match a reference anyone parses:
        # it is a typo, and a silent one.
        for module in value:
            if not is_module_name(module):
                raise ValueError(f"{module!r} is not a dotted module name")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: environment variables are read once)."""
    return Settings()

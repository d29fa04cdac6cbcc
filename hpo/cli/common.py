"""What the `hpo` commands share: their options, the database and server they talk to, and
the translation of errors a user can fix into a message and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from hpo.cli.render import fail, literal
from hpo.config import get_settings
from hpo.errors import SpecError

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: HPO_DATABASE_URL or sqlite:///./hpo.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="HPO_SERVER",
        help="Read from an hpo server (http://host:port) instead of a database.",
    ),
]
ServerRequired = Annotated[
    str | None,
    typer.Option("--server", envvar="HPO_SERVER", help="The hpo server (http://host:port)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="HPO_TOKEN", help="API token for --server.", show_default=False),
]
StudyIdArgument = Annotated[int, typer.Argument(metavar="STUDY_ID")]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors a user can fix into a message and exit code 2."""
    from hpo.storage.errors import NotFoundError, SchemaOutdatedError, StorageError

    try:
        yield
    except SpecError as exc:
        lines = "\n".join(f"  {e}" for e in exc.errors)
        fail(f"invalid spec ({len(exc.errors)} problem{'s' * (len(exc.errors) > 1)}):\n{lines}")
    except (NotFoundError, SchemaOutdatedError) as exc:
        fail(str(exc))
    except StorageError as exc:
        fail(f"database: {exc}", code=1)


def open_repo(db: str | None) -> Any:
    from hpo.storage.repository import Repository

    return Repository(db or get_settings().database_url)


@contextmanager
def connect(server: str | None, token: str | None) -> Iterator[Any]:
    """A client of `server`; the server's refusals print their field/message lines and
    exit 2 (a 4xx: the request was wrong) or 1 (the server or the network failed)."""
    from hpo.client import ApiError, Client

    if not server:
        fail("needs --server URL (or HPO_SERVER)")
    try:
        with Client(server, token) as remote:
            yield remote
    except ApiError as exc:
        # The server's words, shown literally (a message may echo what a user submitted).
        lines = "\n".join(
            f"  {literal(f)}: {literal(m)}" if f else f"  {literal(m)}" for f, m in exc.problems
        )
        where = f"server answered {exc.status}" if exc.status else "no answer"
        fail(f"{where}:\n{lines}", code=2 if exc.client_error else 1)

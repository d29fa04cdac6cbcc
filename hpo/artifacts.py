"""The artifact store: where trial checkpoints live, beside the database.

A store is a root: a local folder, or any fsspec URL (``s3://bucket/hpo``, ``gs://…``,
``file:///shared/hpo``) on a cluster, where every trial process and the driver must reach
the same root. Files are addressed by their full location (the root joined with a
relative key), and that location is what the database records, so a study stays
readable after the root setting changes.

Where the root comes from, first that is set: ``--artifacts`` (CLI), ``HPO_ARTIFACTS``,
else ``<folder of the SQLite file>/<its stem>-artifacts`` for a SQLite database, else
``./hpo-artifacts`` (a PostgreSQL study on one machine). A cluster sets ``HPO_ARTIFACTS``
to a shared URL.

Layout: ``<root>/study-<id>/<driver run>/<Ray trial id>/epoch-<n>.pt``. Deleting a study deletes
``<root>/study-<id>``.

Writes are atomic on a local folder (written to a temporary name, then renamed), so a
process killed mid-write never leaves a truncated checkpoint under a recorded name.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV = "HPO_ARTIFACTS"


def default_root(database_url: str | None) -> str:
    """The store's root for `database_url` when nothing is configured (see module doc)."""
    configured = os.environ.get(ENV)
    if configured:
        return configured
    if database_url and database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            db = Path(path)
            return str(db.parent.resolve() / f"{db.stem}-artifacts")
    return str(Path("hpo-artifacts").resolve())


def _is_url(location: str) -> bool:
    # "C:\\x" has a one-letter scheme on Windows; URLs have longer ones.
    return len(urlsplit(location).scheme) > 1


def _fs(location: str) -> tuple[Any, str]:
    """The fsspec file system serving `location`, and the path inside it."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(location)
    return fs, path


def join(root: str, *parts: str) -> str:
    """`root` / parts, for a folder or a URL."""
    if _is_url(root):
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root, *parts))


def study_prefix(root: str, study_id: int) -> str:
    """Where study `study_id`'s artifacts live."""
    return join(root, f"study-{study_id}")


def write(location: str, data: bytes) -> int:
    """Store `data` at `location` (creating folders); returns its size in bytes."""
    if _is_url(location):
        fs, path = _fs(location)
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "wb") as f:
            f.write(data)
        return len(data)
    target = Path(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    partial.write_bytes(data)
    os.replace(partial, target)
    return len(data)


def read(location: str) -> bytes:
    """The bytes stored at `location`; `FileNotFoundError` if there are none."""
    if _is_url(location):
        fs, path = _fs(location)
        with fs.open(path, "rb") as f:
            data: bytes = f.read()
        return data
    return Path(location).read_bytes()


def delete(location: str) -> None:
    """Remove the file at `location`; a missing file is not an error."""
    try:
        if _is_url(location):
            fs, path = _fs(location)
            fs.rm(path)
        else:
            Path(location).unlink()
    except FileNotFoundError:
        pass


def delete_tree(location: str) -> None:
    """Remove the folder `location` and everything under it; missing is not an error."""
    if _is_url(location):
        fs, path = _fs(location)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        return
    import shutil

    shutil.rmtree(location, ignore_errors=True)


def tree_size(location: str) -> int:
    """Bytes stored under the folder `location` (0 when it does not exist)."""
    if _is_url(location):
        fs, path = _fs(location)
        return int(fs.du(path)) if fs.exists(path) else 0
    root = Path(location)
    if not root.exists():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _parent(location: str) -> str:
    if _is_url(location):
        return location.rstrip("/").rsplit("/", 1)[0]
    return str(Path(location).parent)


def delete_study(study_id: int, locations: list[str], root: str) -> None:
    """Delete study `study_id`'s artifacts: its folder under `root`, and the study
    folders of `locations` (its recorded checkpoints, which an earlier root may hold)."""
    folders = {study_prefix(root, study_id)}
    name = f"study-{study_id}"
    for location in locations:
        # <root>/study-<id>/<run>/<trial>/epoch-<n>.pt
        folder = _parent(_parent(_parent(location)))
        if folder.rstrip("/").rsplit("/", 1)[-1].endswith(name) or Path(folder).name == name:
            folders.add(folder)
        else:
            delete(location)
    for folder in folders:
        delete_tree(folder)

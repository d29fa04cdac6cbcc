"""The artifact store on a local folder and at an fsspec URL (fsspec's in-memory file
system stands in for s3:// and friends)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hpo import artifacts


@pytest.fixture(params=["folder", "url"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "store")
    return f"memory://hpo-test-{uuid.uuid4().hex[:8]}"


def test_write_read_delete_and_study_folders(root: str) -> None:
    first = artifacts.join(artifacts.study_prefix(root, 7), "run", "t1", "epoch-1.pt")
    second = artifacts.join(artifacts.study_prefix(root, 7), "run", "t1", "epoch-2.pt")
    other = artifacts.join(artifacts.study_prefix(root, 8), "run", "t1", "epoch-1.pt")
    assert artifacts.write(first, b"abc") == 3
    assert artifacts.write(second, b"defgh") == 5
    artifacts.write(other, b"x")
    assert artifacts.read(first) == b"abc"
    assert artifacts.tree_size(artifacts.study_prefix(root, 7)) == 8
    artifacts.delete(first)
    artifacts.delete(first)  # missing is not an error
    with pytest.raises(FileNotFoundError):
        artifacts.read(first)
    artifacts.delete_study(7, [second], root)
    assert artifacts.tree_size(artifacts.study_prefix(root, 7)) == 0
    assert artifacts.read(other) == b"x"  # another study's files stay


def test_default_root_is_beside_the_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(artifacts.ENV, raising=False)
    db = tmp_path / "runs" / "hpo.db"
    assert artifacts.default_root(f"sqlite:///{db}") == str(tmp_path / "runs" / "hpo-artifacts")
    monkeypatch.setenv(artifacts.ENV, "s3://bucket/hpo")
    assert artifacts.default_root(f"sqlite:///{db}") == "s3://bucket/hpo"

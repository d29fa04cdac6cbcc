"""A trial's error as readers see it (issue 12, item 9): the user's own frames, not the
server's file system. The traceback is a real one, raised through hpo's loaders into a
user module; real HTTP."""

from __future__ import annotations

import sys
import sysconfig
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import hpo
from api.app import create_app
from hpo.config import Settings
from hpo.storage.repository import Repository
from tests.api.support import live_server, seed_study

USER_MODULE = """\
def load(config):
    return helper(config)


def helper(config):
    raise ValueError("the user's own bug")
"""


@pytest.fixture
def real_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "userdata_mod.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from hpo.training.data import _user_dataset

    try:
        _user_dataset("userdata_mod:load", {})
    except ValueError:
        trace = traceback.format_exc()
    finally:
        sys.modules.pop("userdata_mod", None)
    header = "ray::ImplicitFunc.train() (pid=4242, ip=10.1.2.3, actor_id=ab12, repr=fit)"
    missing = f"FileNotFoundError: [Errno 2] No such file: '{Path(hpo.__file__).parent}/x.bin'"
    return f"ValueError: the user's own bug\n\n{header}\n{trace}\n{missing}"


@pytest.fixture
def base_url(db_url: str) -> Iterator[str]:
    with live_server(create_app(db_url, settings=Settings())) as url:
        yield url + "/api/v1"


def test_readers_see_their_frames_not_the_servers_paths(
    base_url: str, db_url: str, real_trace: str
) -> None:
    server_paths = [str(Path(hpo.__file__).resolve().parent.parent), sys.prefix]
    server_paths.append(sysconfig.get_paths()["stdlib"])
    assert any(p in real_trace for p in server_paths)  # the raw trace has them
    with Repository(db_url) as repo:
        study = seed_study(repo, values=(1.0,))
        trial = repo.list_trials(study.id)[0]
        repo.finish_trial(trial.id, "failed", error=real_trace)
        repo.set_study_status(study.id, "failed", error=real_trace)
        assert repo.get_study(study.id).error == real_trace  # the database keeps it all
    with httpx.Client(base_url=base_url, timeout=10) as http:
        shown = [
            http.get(f"/studies/{study.id}/trials").json()["data"][0]["error"],
            http.get(f"/studies/{study.id}/trials/{trial.number}").json()["error"],
            http.get(f"/studies/{study.id}").json()["error"],
        ]
    for error in shown:
        for path in server_paths:
            assert path not in error, error
        assert "10.1.2.3" not in error and "pid=" not in error
        assert 'File "userdata_mod.py", line 2, in load' in error
        assert 'File "userdata_mod.py", line 6, in helper' in error
        assert 'raise ValueError("the user\'s own bug")' in error
        assert " of hpo and its libraries]" in error
        assert error.splitlines()[0] == "ValueError: the user's own bug"
        assert "No such file: '<server>/hpo/x.bin'" in error

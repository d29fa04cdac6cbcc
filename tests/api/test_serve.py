"""`hpo serve`: the refusal to expose an unauthenticated server, and end to end with Ray —
serve with one runner, submit a tiny Branin study, watch it finish, read the best trial."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from hpo.cli import app

TINY_BRANIN = {
    "name": "branin-e2e",
    "objective": {"metric": "value", "mode": "min"},
    "trainable": {"function": "hpo.examples.functions:branin"},
    "budget": {"trials": 3, "max_epochs": 2},
    "strategy": {"name": "random", "seed": 1},
    "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
}


def test_serve_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/hpo.db"
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--db", db, "--runners", "0"])
    assert refused.exit_code == 2
    assert "without authentication" in refused.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hpo(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_serve_submit_watch_best(tmp_path: Path) -> None:
    if importlib.util.find_spec("hpo.execution.runner") is None:
        pytest.skip("hpo.execution.runner (start_runners) does not exist yet")
    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HPO_ALLOWED_MODULES": "hpo.examples", "HPO_SERVER": server}
    spec = tmp_path / "branin.yaml"
    spec.write_text(yaml.safe_dump(TINY_BRANIN))
    log = (tmp_path / "serve.log").open("w")
    db = f"sqlite:///{tmp_path}/hpo.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "serve", "--port", str(port), "--db", db, "--runners", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{server}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hpo serve did not come up"
            time.sleep(0.3)
        submitted = _hpo("submit", str(spec), env=env, timeout=60)
        assert submitted.returncode == 0, submitted.stderr
        study_id = submitted.stdout.strip()
        watched = _hpo("watch", study_id, env=env, timeout=300)
        assert watched.returncode == 0, watched.stderr + (tmp_path / "serve.log").read_text()
        assert "best trial #" in watched.stdout
        best = _hpo("best", study_id, env=env, timeout=60)
        assert best.returncode == 0, best.stderr
        config = yaml.safe_load(best.stdout.split("\n", 1)[1])
        assert -5 <= config["x1"] <= 10 and 0 <= config["x2"] <= 15
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_MARKER_PACKAGE = """\
from pathlib import Path
Path(__file__).resolve().parent.parent.joinpath("IMPORTED").write_text("revmarker ran")
def f(*args):
    return None
"""


@pytest.mark.slow
def test_bypass_forms_never_import_from_the_servers_directory(tmp_path: Path) -> None:
    """Issue 12, item 1, as reported: a `revmarker` package in the server's working
    directory, whose import writes a marker. The bypass forms are refused, and a study the
    runner does run (so trials start in that directory) leaves no marker either."""
    if importlib.util.find_spec("hpo.execution.runner") is None:
        pytest.skip("hpo.execution.runner (start_runners) does not exist yet")
    (tmp_path / "revmarker").mkdir()
    (tmp_path / "revmarker" / "__init__.py").write_text(_MARKER_PACKAGE)
    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HPO_ALLOWED_MODULES": "hpo.examples"}
    log = (tmp_path / "serve.log").open("w")
    db = f"sqlite:///{tmp_path}/hpo.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "serve", "--port", str(port), "--db", db, "--runners", "1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    builtin = {
        "name": "bypass",
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "trainable": {"dataset": "digits"},
        "budget": {"trials": 1, "max_epochs": 1},
    }
    attempts = [
        {**builtin, "fixed": {"dataset": "revmarker.-:f"}},
        {**builtin, "trainable": {"dataset": "revmarker.:f"}},
        {**builtin, "space": {"dataset": {"choice": ["digits", " revmarker:f"]}}},
        {**TINY_BRANIN, "trainable": {"function": "os.:system"}},
        {**TINY_BRANIN, "trainable": {"function": " os:system"}},
    ]
    try:
        with httpx.Client(base_url=server, timeout=10) as http:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if http.get("/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "hpo serve did not come up"
                time.sleep(0.3)
            for spec in attempts:
                answer = http.post("/api/v1/studies", json=spec)
                assert answer.status_code == 422, (spec, answer.text)
            ran = http.post(
                "/api/v1/studies",
                json={**TINY_BRANIN, "budget": {"trials": 1, "max_epochs": 1}},
            )
            assert ran.status_code == 201, ran.text
            study_id = ran.json()["id"]
            deadline = time.monotonic() + 240
            while http.get(f"/api/v1/studies/{study_id}").json()["status"] != "completed":
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.5)
            assert len(http.get("/api/v1/studies").json()["data"]) == 1
        assert not (tmp_path / "IMPORTED").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_access_log_never_records_a_token_from_the_query_string(tmp_path: Path) -> None:
    """uvicorn's access log, as `hpo serve` writes it: a token a client put in the URL is
    redacted (names percent-encoded too); the rest of the line stays."""
    port = _free_port()
    db = f"sqlite:///{tmp_path}/hpo.db"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "serve", "--port", str(port), "--db", db, "--runners", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hpo serve did not come up"
            time.sleep(0.2)
        httpx.get(f"{base}/api/v1/studies?token=SECRET-ONE&limit=5")
        httpx.get(f"{base}/?access_token=SECRET-TWO")
        httpx.get(f"{base}/api/v1/studies?%74oken=SECRET-THREE")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "GET /api/v1/studies?token=[redacted]&limit=5" in text, text
    assert "access_token=[redacted]" in text and "%74oken=[redacted]" in text, text
    assert "SECRET" not in text, text


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _hostile_requests(base: str) -> list[dict[str, object]]:
    """One of each class of hostile request, as `httpx.request` keyword arguments."""
    api = f"{base}/api/v1/studies"
    head = {
        "objective": {"metric": "value", "mode": "min"},
        "trainable": {"function": "hpo.examples.functions:branin"},
    }
    choice = {
        **head,
        "name": "cc",
        "space": {
            "a": {"choice": list(range(8000))},
            "b": {"uniform": [0, 1], "when": {"a": list(range(8000, 16000))}},
        },
    }
    grid = {**head, "name": "g", "strategy": "grid"}
    grid["space"] = {f"p{i}": {"choice": [0, 1]} for i in range(20)}
    yaml_head = (
        "objective: {metric: value, mode: min}\n"
        "trainable: {function: 'hpo.examples.functions:branin'}\n"
    )
    bomb = ['  - &a ["x\\\\y", 1]'] + [
        f"  - &l{i} [*{'a' if i == 1 else f'l{i - 1}'}, *{'a' if i == 1 else f'l{i - 1}'}]"
        for i in range(1, 24)
    ]
    as_yaml = {"Content-Type": "application/yaml"}
    as_json = {"Content-Type": "application/json"}
    return [
        {"method": "POST", "url": api, "json": choice},
        {"method": "POST", "url": api, "json": grid},
        {
            "method": "POST",
            "url": api,
            "content": '{"budget": {"trials": ' + "9" * 4301 + "}}",
            "headers": as_json,
        },
        {
            "method": "POST",
            "url": api,
            "content": f"name: 2024-13-45\n{yaml_head}budget: {{trials: {'1' * 5000}}}\n",
            "headers": as_yaml,
        },
        {
            "method": "POST",
            "url": api,
            "content": "bomb:\n" + "\n".join(bomb) + "\nname: b\n" + yaml_head,
            "headers": as_yaml,
        },
        {"method": "POST", "url": api, "content": "[" * 20000 + "]" * 20000, "headers": as_json},
        {
            "method": "POST",
            "url": api,
            "json": {**head, "name": "n\x00", "fixed": {"dataset": "revmarker.-:f"}},
        },
        {
            "method": "POST",
            "url": f"{api}/1/cancel",
            "content": "x=1",
            "headers": {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "http://evil.example",
            },
        },
        {"method": "GET", "url": api, "headers": {"Host": "rebind.attacker.example"}},
        {"method": "GET", "url": f"{api}?owner=%00&token=secret"},
        {"method": "OPTIONS", "url": api},
    ]


@pytest.mark.slow
def test_server_memory_stays_flat_under_hostile_requests(tmp_path: Path) -> None:
    """Issue 12's figure: the server's resident memory after 1,000 hostile requests (each
    class above, in turn) is what it was after a warm-up of 200, within allocator noise."""
    port = _free_port()
    db = f"sqlite:///{tmp_path}/hpo.db"
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "HPO_ALLOWED_MODULES": "hpo.examples"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "serve", "--port", str(port), "--db", db, "--runners", "0"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hpo serve did not come up"
            time.sleep(0.2)
        requests = _hostile_requests(base)
        statuses: dict[int, int] = {}
        with httpx.Client(timeout=60) as http:

            def send(n: int) -> None:
                for i in range(n):
                    answer = http.request(**requests[i % len(requests)])  # type: ignore[arg-type]
                    assert answer.status_code < 500, answer.text[:300]
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

            start = _rss_mib(proc.pid)
            send(200)
            warm = _rss_mib(proc.pid)
            started = time.monotonic()
            send(1000)
            elapsed = time.monotonic() - started
            after = _rss_mib(proc.pid)
            send(1000)
            again = _rss_mib(proc.pid)
        print(
            f"\nserver RSS: {start:.1f} MiB at start, {warm:.1f} after 200 hostile requests, "
            f"{after:.1f} after 1,000 more ({elapsed:.1f} s), {again:.1f} after another 1,000; "
            f"answers by status: {dict(sorted(statuses.items()))}"
        )
        assert after - warm < 16 and again - after < 8
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()

"""The deployment files (docker/) agree with each other and with the project.

Nothing here needs Docker: compose.yaml is read as YAML and the Dockerfile as text, and
both are checked against pyproject.toml and the repository's files.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
IMAGE_SERVICES = ("ray-head", "ray-worker-cpu", "ray-worker", "api")
WORKERS = ("ray-worker-cpu", "ray-worker")
ENV_EXAMPLE = DOCKER / ".env.example"
# Ray's GCS, dashboard and client-server ports: whoever reaches them runs code.
RAY_PORTS = {6379, 8265, 10001}

_VAR_NAMES = re.compile(r"\$\{(\w+)")
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any) -> str:
    """`value` as Compose would see it: `${X:-default}` becomes the default, a variable
    without one (`${X}`, `${X:?message}`) becomes `<X>`, so equal variables compare equal."""

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        return arg if op in ("-", ":-") else f"<{name}>"

    return _VAR.sub(sub, str(value))


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml has no service {name!r}"
    svc: dict[str, Any] = services[name]
    return svc


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: interpolate(v) for k, v in env.items()}


def command(name: str) -> list[str]:
    cmd = service(name).get("command")
    assert cmd, f"{name} has no command"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def option(args: list[str], flag: str) -> str | None:
    """The value of `--flag VALUE` or `--flag=VALUE` in `args`."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def published_ports(svc: dict[str, Any]) -> list[tuple[int | None, int]]:
    """(host port or None for an ephemeral one, container port) of each published port."""
    found: list[tuple[int | None, int]] = []
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):
            target = int(entry["target"])
            host = entry.get("published")
            found.append((int(str(host).split("-")[0]) if host else None, target))
            continue
        parts = interpolate(entry).split("/")[0].rsplit(":", 2)
        container = parts[-1]
        host_part = parts[-2] if len(parts) >= 2 else ""
        low, _, high = container.partition("-")
        targets = range(int(low), int(high or low) + 1)
        if host_part:
            hlow, _, hhigh = host_part.partition("-")
            hosts: list[int | None] = list(range(int(hlow), int(hhigh or hlow) + 1))
        else:
            hosts = [None] * len(targets)
        found.extend(zip(hosts, targets, strict=False))
    return found


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def dependencies() -> dict[str, Requirement]:
    reqs = (Requirement(d) for d in pyproject()["project"]["dependencies"])
    return {r.name.lower(): r for r in reqs}


@cache
def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def dockerfile(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec (JSON) form: {args}"
    return [str(v) for v in value]


def arg_defaults() -> dict[str, str]:
    defaults: dict[str, str] = {}
    for args in dockerfile("ARG"):
        name, sep, default = args.partition("=")
        if sep:
            defaults[name.strip()] = default.strip().strip("\"'")
    return defaults


# --- compose.yaml -------------------------------------------------------------------------


def test_compose_has_the_five_services() -> None:
    assert {"postgres", "ray-head", "ray-worker-cpu", "ray-worker", "api"} <= set(
        compose()["services"]
    )


def test_compose_v1_can_read_the_file() -> None:
    """Compose v1 refuses a top-level `name:` and knows profiles from 1.28 on."""
    assert "name" not in compose(), "Compose v1 rejects a top-level name: (use .env)"
    assert str(compose().get("version", "3.8")) >= "3", "profiles need the v3 file format"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose (v1)")
def test_compose_v1_accepts_the_file_with_the_example_env(tmp_path: Path) -> None:
    """`docker-compose config` (v1, Debian's) validates the file as a real deployment
    would: with .env.example's settings and the three secrets filled in."""
    env = tmp_path / "deploy.env"
    text = ENV_EXAMPLE.read_text()
    for secret in ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "HPO_API_TOKEN"):
        text = text.replace(f"{secret}=\n", f"{secret}=s3cret{secret.lower()}\n")
    env.write_text(text + f"HPO_ENV_FILE={env}\n")
    base = ["docker-compose", "--env-file", str(env), "-f", str(COMPOSE)]
    done = subprocess.run([*base, "config"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)["services"]
    # v1 keeps the profile (and `up` honours it: tests/e2e starts no GPU worker).
    assert rendered["ray-worker"]["profiles"] == ["gpu"]
    assert "profiles" not in rendered["ray-worker-cpu"]
    head = rendered["ray-head"]["command"]
    assert "--num-cpus=0" in head
    assert rendered["api"]["environment"]["RAY_AUTH_TOKEN"] == "s3cretray_auth_token"
    (port,) = rendered["api"]["ports"]  # v1 renders "ip:host:container", v2 a mapping
    assert (port["host_ip"] if isinstance(port, dict) else port.split(":")[0]) == "127.0.0.1"
    missing = env.read_text().replace("HPO_API_TOKEN=s3crethpo_api_token\n", "")
    env.write_text(missing)
    refused = subprocess.run([*base, "config"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "HPO_API_TOKEN" in refused.stderr


@pytest.mark.parametrize("name", ["postgres", "ray-head", "api"])
def test_service_has_a_health_check(name: str) -> None:
    check = service(name).get("healthcheck")
    assert check, f"{name} has no health check"
    assert not check.get("disable"), f"{name}'s health check is disabled"
    assert check.get("test") and check["test"][0] != "NONE", f"{name} has no health test"


def test_health_checks_probe_the_right_thing() -> None:
    assert "pg_isready" in " ".join(service("postgres")["healthcheck"]["test"])
    assert service("ray-head")["healthcheck"]["test"][-2:] == ["ray", "status"]
    api_test = " ".join(service("api")["healthcheck"]["test"])
    assert f"127.0.0.1:{api_port()}/healthz" in api_test


def test_api_waits_for_a_healthy_database_and_ray_head() -> None:
    depends = service("api").get("depends_on")
    assert isinstance(depends, dict), "api's depends_on needs conditions (the long form)"
    for name in ("postgres", "ray-head"):
        assert depends.get(name, {}).get("condition") == "service_healthy", name


def test_hpo_services_use_the_one_image_built_from_the_dockerfile() -> None:
    images = set()
    for name in IMAGE_SERVICES:
        svc = service(name)
        build = svc.get("build")
        assert isinstance(build, dict), f"{name} is not built from docker/Dockerfile"
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}'s build context {context} is not the repository"
        assert (context / "pyproject.toml").is_file()
        # Compose resolves `dockerfile` against the context.
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert svc.get("image"), f"{name} names no image: each service would get its own"
        images.add(svc["image"])
    assert len(images) == 1, f"one image for the cluster, not {images}"


def test_api_database_url_matches_the_postgres_service() -> None:
    pg = environment("postgres")
    url = urlsplit(environment("api")["HPO_DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "postgres"
    assert (url.port or 5432) == 5432
    assert url.username == pg.get("POSTGRES_USER", "postgres")
    assert url.password == pg["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == pg.get("POSTGRES_DB", url.username)


def ray_head_port() -> int:
    args = command("ray-head")
    assert args[:3] == ["ray", "start", "--head"]
    return int(option(args, "--port") or 6379)


def test_api_and_workers_reach_the_ray_head_port() -> None:
    expected = f"ray-head:{ray_head_port()}"
    assert environment("api")["HPO_RAY_ADDRESS"] == expected
    for worker in WORKERS:
        assert option(command(worker), "--address") == expected
    assert option(command("ray-head"), "--dashboard-host") == "127.0.0.1"


def test_ray_uses_token_authentication_with_one_token() -> None:
    tokens = set()
    for name in IMAGE_SERVICES:
        env = environment(name)
        assert env.get("RAY_AUTH_MODE") == "token", name
        assert env.get("RAY_AUTH_TOKEN", "").startswith("<"), f"{name}: token not from env"
        tokens.add(env["RAY_AUTH_TOKEN"])
    assert len(tokens) == 1


def test_api_needs_a_token_from_the_environment() -> None:
    raw = service("api")["environment"]["HPO_API_TOKEN"]
    # `${HPO_API_TOKEN:?…}`: Compose stops with a message rather than serve with none.
    assert re.fullmatch(r"\$\{HPO_API_TOKEN:\?[^}]*\}", raw), raw


@pytest.mark.parametrize("name", WORKERS)
def test_ray_workers_can_scale(name: str) -> None:
    worker = service(name)
    assert "container_name" not in worker, f"a fixed name prevents --scale {name}=N"
    assert not published_ports(worker), f"published ports prevent --scale {name}=N"


def test_gpu_workers_are_opt_in_and_cpu_workers_reserve_no_gpu() -> None:
    gpu = service("ray-worker")
    assert gpu.get("profiles") == ["gpu"], "GPU workers must be opt-in (--profile gpu)"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    cpu = service("ray-worker-cpu")
    assert "profiles" not in cpu, "the CPU workers run by default"
    assert "deploy" not in cpu
    assert option(command("ray-worker-cpu"), "--num-gpus") == "0"


def test_postgres_is_initialized_utf8() -> None:
    """SQLAlchemy's psycopg dialect fails at connect on a SQL_ASCII database."""
    args = environment("postgres")["POSTGRES_INITDB_ARGS"].split()
    assert "--encoding=UTF8" in args
    assert any(a.startswith("--locale=") and a.upper().endswith("UTF-8") for a in args)


def test_hpo_services_read_the_one_env_file() -> None:
    files = {str(service(name).get("env_file")) for name in IMAGE_SERVICES}
    assert files == {"${HPO_ENV_FILE:-.env}"}, files


def test_env_example_names_every_setting_of_the_compose_file() -> None:
    """Each ${VAR} compose.yaml reads is documented in .env.example (and nothing more)."""
    used = set(_VAR_NAMES.findall(COMPOSE.read_text())) - {"HPO_ENV_FILE"}
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used - listed == set(), f"not in .env.example: {sorted(used - listed)}"
    assert listed - used - {"COMPOSE_PROJECT_NAME", "HPO_STORAGE_RETRY_S"} == set()
    for secret in ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "HPO_API_TOKEN"):
        assert f"\n{secret}=\n" in ENV_EXAMPLE.read_text(), f"{secret} must ship empty"


def test_no_service_exposes_ray_to_the_host() -> None:
    ray_ports = RAY_PORTS | {ray_head_port()}
    for name, svc in compose()["services"].items():
        assert svc.get("network_mode") != "host", f"{name} shares the host's network"
        for host, container in published_ports(svc):
            assert container not in ray_ports, f"{name} publishes Ray's port {container}"
            assert host not in ray_ports, f"{name} publishes host port {host}"


# --- Dockerfile ---------------------------------------------------------------------------


def serve_command() -> list[str]:
    cmds = dockerfile("CMD")
    assert cmds, "the Dockerfile has no CMD"
    return exec_form(cmds[-1])


def api_port() -> int:
    port = option(command("api"), "--port")
    assert port, "api's command names no --port"
    return int(port)


def test_default_command_is_hpo_serve_from_the_console_script() -> None:
    cmd = serve_command()
    assert cmd[:2] == ["hpo", "serve"]
    assert option(cmd, "--host") == "0.0.0.0"
    assert "hpo" in pyproject()["project"]["scripts"]
    assert command("api")[:2] == ["hpo", "serve"]


def test_entrypoint_runs_its_arguments() -> None:
    (entry,) = dockerfile("ENTRYPOINT")
    assert exec_form(entry) == ["hpo-entrypoint"]
    script = (DOCKER / "entrypoint.sh").read_text()
    assert script.startswith("#!/bin/sh")
    assert 'exec "$@"' in script


def test_ports_agree() -> None:
    exposed = {int(p.split("/")[0]) for args in dockerfile("EXPOSE") for p in args.split()}
    port = int(option(serve_command(), "--port") or 0)
    assert exposed == {port}
    assert api_port() == port
    assert port in {target for _, target in published_ports(service("api"))}
    (check,) = dockerfile("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in check


def test_installs_the_torch_version_pyproject_pins() -> None:
    (pinned,) = (s.version for s in dependencies()["torch"].specifier if s.operator == "==")
    defaults = arg_defaults()
    installed = set()
    for run in dockerfile("RUN"):
        for match in re.finditer(r"torch==(\$\{?(\w+)\}?|[\w.+]+)", run):
            installed.add(defaults.get(match.group(2), "?") if match.group(2) else match.group(1))
    assert installed == {pinned}


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether BuildKit's ignore `patterns` (last match wins) exclude `path`."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in candidates):
            result = not negate
    return result


def test_every_copied_path_exists_and_reaches_the_build() -> None:
    ignore_file = DOCKER / "Dockerfile.dockerignore"
    patterns = [
        line.strip()
        for line in ignore_file.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for must_go in (".venv", ".git"):
        assert ignored(must_go, patterns), must_go
    copies = dockerfile("COPY") + dockerfile("ADD")
    assert copies
    for args in copies:
        words = exec_form(args) if args.startswith("[") else shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        sources = [w for w in words if not w.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not ignored(source.strip("/"), patterns), f"COPY {source} is ignored"


def test_no_syntax_line_pulls_a_frontend_from_the_hub() -> None:
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), first


def test_torch_comes_from_pypi_by_default() -> None:
    """PyTorch's own index is unreachable from some networks (ours): the default build
    argument leaves the index to pip (PyPI); a CPU or CUDA index is opt-in."""
    defaults = arg_defaults()
    assert defaults.get("TORCH_INDEX_URL", "") == ""
    assert defaults.get("TORCH_FIND_LINKS", "") == ""
    assert "download.pytorch.org" not in " ".join(dockerfile("RUN"))


def test_runs_as_a_non_root_user() -> None:
    users = dockerfile("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_the_package_installs_what_hpo_serve_imports() -> None:
    """`pip install .` must bring the `api` package and the server's libraries: the image
    has no repository checkout to import them from."""
    include = pyproject()["tool"]["setuptools"]["packages"]["find"].get("include", ["*"])
    assert any(fnmatch.fnmatch("api", p) for p in include), (
        f"[tool.setuptools.packages.find] include = {include} leaves out the api package"
    )
    missing = {"fastapi", "uvicorn"} - set(dependencies())
    assert not missing, f"pyproject.toml's dependencies lack {sorted(missing)}"


def test_the_wheel_carries_the_dashboard_and_the_migrations(tmp_path: Path) -> None:
    """The image runs `pip install .`, not an editable install: what the server reads from
    disk (page templates, script, Plotly's bundle, Alembic migrations) must be in the wheel.
    Built from a copy of what the Dockerfile copies, so that no build/ lands in the checkout."""
    source = tmp_path / "src"
    for name in ("hpo", "api"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("hpo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [
        "api/dashboard/templates/study.html",
        "api/dashboard/static/dashboard.js",
        "api/dashboard/static/dashboard.css",
        "api/dashboard/static/vendor/plotly-cartesian.min.js",
        "api/dashboard/static/vendor/plotly.js-LICENSE",
        "hpo/storage/migrations/env.py",
        "hpo/storage/migrations/versions/0001_initial.py",
    ]:
        assert name in names, f"{name} is missing from the wheel"

"""A Docker engine and the images the end-to-end test needs, made without a registry.

Our machines reach Debian's mirror and PyPI but not Docker Hub, so the Hub images the
deployment files name (`python:3.11-slim`, `postgres:16`) are replaced by local
stand-ins built from a debootstrap of Debian bookworm:

* `hpo-e2e/python:3.11` — Debian's Python 3.11 with venv, the image's `BASE_IMAGE`;
* `hpo-e2e/postgres:15` — Debian's PostgreSQL 15 behind an entry point that honours the
  official image's `POSTGRES_USER/PASSWORD/DB/INITDB_ARGS` and `PGDATA`.

Everything is tagged and kept by the engine, so a second run rebuilds nothing: base
images are reused by tag, pip downloads through BuildKit's cache mount, layers by
BuildKit's cache. The host's extra CA certificates (an intercepting HTTPS proxy) are
copied into the Python stand-in at build time, never into the repository.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DEBIAN_MIRROR = os.environ.get("HPO_E2E_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE = "hpo-e2e/debian:bookworm"
PYTHON = "hpo-e2e/python:3.11"
POSTGRES = "hpo-e2e/postgres:15"
WHEEL_PORT = int(os.environ.get("HPO_E2E_WHEEL_PORT", "38765"))
STATE = Path(os.environ.get("HPO_E2E_STATE", "/var/tmp/hpo-e2e"))


class EngineUnavailable(RuntimeError):
    """No Docker engine can be used here; the message says why (the test skips with it)."""


def docker_binary() -> str:
    """Debian's client where installed: it builds with the engine's BuildKit, while a
    newer client without the buildx plugin refuses `DOCKER_BUILDKIT=1`."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EngineUnavailable("no docker client")


def docker(*args: str, check: bool = True, timeout: float = 900, **kw: object) -> str:
    """Run the docker client; its stdout, or a RuntimeError carrying stderr."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    proc = subprocess.run(
        [docker_binary(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **kw,  # type: ignore[arg-type]
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def _engine_answers() -> bool:
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except (RuntimeError, subprocess.TimeoutExpired, EngineUnavailable):
        return False
    return True


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            raise EngineUnavailable(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")


def ensure_engine() -> None:
    """A running engine, or EngineUnavailable. As root with apt (our machines and CI),
    installs Debian's docker.io, docker-compose and debootstrap and starts dockerd."""
    if _engine_answers():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineUnavailable("no running Docker engine, and not root with apt to start one")
    missing = [
        pkg
        for pkg, tool in (
            ("docker.io", "/usr/sbin/dockerd"),
            ("docker-compose", "/usr/bin/docker-compose"),
            ("debootstrap", "/usr/sbin/debootstrap"),
        )
        if not os.path.exists(tool)
    ]
    if missing:
        _apt_install(*missing)
    STATE.mkdir(parents=True, exist_ok=True)
    log = (STATE / "dockerd.log").open("ab")
    # Detached from the test process: the engine and its cache outlive the run.
    daemon = subprocess.Popen(["/usr/sbin/dockerd"], stdout=log, stderr=log, start_new_session=True)
    for _ in range(60):
        if _engine_answers():
            return
        if daemon.poll() is not None:
            last = (STATE / "dockerd.log").read_text(errors="replace").strip().splitlines()
            raise EngineUnavailable(f"dockerd exited: {last[-1] if last else '?'}")
        time.sleep(1)
    raise EngineUnavailable(f"dockerd did not answer within 60 s (log: {STATE / 'dockerd.log'})")


def compose_command() -> list[str]:
    """Compose v1 (Debian's docker-compose) or v2 (`docker compose`), whichever is here."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(
        [docker_binary(), "compose", "version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [docker_binary(), "compose"]
    raise EngineUnavailable("neither docker-compose nor `docker compose` is installed")


def _has_image(tag: str) -> bool:
    return bool(docker("images", "-q", tag).strip())


def _build(tag: str, context: Path, *extra: str) -> None:
    docker("build", "-t", tag, *extra, str(context), timeout=1800)


def _extra_ca_certificates() -> list[Path]:
    folder = Path("/usr/local/share/ca-certificates")
    return sorted(folder.glob("*.crt")) if folder.is_dir() else []


PYTHON_DOCKERFILE = f"""FROM {BASE}
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
    python3 python3-venv ca-certificates \\
 && update-ca-certificates && rm -rf /var/lib/apt/lists/*
# pip and requests bring their own CA bundle; point them at the system's, which now
# trusts the proxy.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
"""

POSTGRES_DOCKERFILE = f"""FROM {BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/bin/postgres-entrypoint
RUN chmod 0755 /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["postgres-entrypoint"]
"""

# The subset of the official image's entry point that compose.yaml relies on.
POSTGRES_ENTRYPOINT = """#!/bin/sh
set -eu
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown postgres /tmp/pwfile
    runuser -u postgres -- initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile \\
        --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-}
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=" -w start
    runuser -u postgres -- psql -U "$POSTGRES_USER" -d postgres \\
        -c "CREATE DATABASE \\"${POSTGRES_DB:-$POSTGRES_USER}\\""
    runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec runuser -u postgres -- postgres -D "$PGDATA"
"""


def _mounts_below(root: Path) -> list[str]:
    """Mount points inside `root`, deepest first (debootstrap may leave /proc mounted)."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted((p for p in points if p.startswith(f"{root}/")), reverse=True)


def _import_debootstrap(tag: str) -> None:
    """A minimal bookworm from Debian's mirror, imported as image `tag`."""
    STATE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=STATE))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), DEBIAN_MIRROR],
            check=True,
            capture_output=True,
            timeout=900,
        )
        for point in _mounts_below(root):
            subprocess.run(["umount", "-l", point], check=False)
        # --one-file-system: never archive a pseudo file system left mounted below root.
        tar = subprocess.Popen(
            ["tar", "--one-file-system", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        )
        subprocess.run(
            [docker_binary(), "import", "-", tag],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
            timeout=300,
        )
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {root} failed")
    finally:
        for point in _mounts_below(root):
            subprocess.run(["umount", "-l", point], check=False)
        if not _mounts_below(root):
            shutil.rmtree(root, ignore_errors=True)


def ensure_base_images() -> None:
    """The Debian base and the Python stand-in, built once per engine (~2 min cold)."""
    if not _has_image(BASE):
        if not shutil.which("debootstrap"):
            raise EngineUnavailable("debootstrap is missing (apt-get install debootstrap)")
        _import_debootstrap(BASE)
    if not _has_image(PYTHON):
        with tempfile.TemporaryDirectory(prefix="hpo-e2e-python-") as ctx:
            (Path(ctx) / "ca").mkdir()
            for cert in _extra_ca_certificates():
                shutil.copy(cert, Path(ctx) / "ca" / cert.name)
            (Path(ctx) / "Dockerfile").write_text(PYTHON_DOCKERFILE)
            _build(PYTHON, Path(ctx))


def ensure_postgres_image() -> None:
    """The PostgreSQL stand-in (on the Debian base), built once per engine."""
    if not _has_image(POSTGRES):
        with tempfile.TemporaryDirectory(prefix="hpo-e2e-postgres-") as ctx:
            (Path(ctx) / "Dockerfile").write_text(POSTGRES_DOCKERFILE)
            (Path(ctx) / "entrypoint.sh").write_text(POSTGRES_ENTRYPOINT)
            _build(POSTGRES, Path(ctx))


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge, where build steps reach it."""
    out = docker("network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")
    return out.strip() or "172.17.0.1"


@contextmanager
def serve_wheels(folder: Path, host: str) -> Iterator[str | None]:
    """Serve `folder` (wheels, e.g. the CPU torch on disk) over HTTP on `host` for the
    build's pip (`--find-links`); None when the folder has no wheel."""
    if not any(folder.glob("*.whl")):
        yield None
        return

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    # A fixed port where free: the URL is a build argument, and a new value would
    # invalidate BuildKit's cache of every step after it.
    try:
        server = http.server.ThreadingHTTPServer((host, WHEEL_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def build_project_image(root: Path, tag: str, build_args: Sequence[str] = ()) -> None:
    """`docker build -f docker/Dockerfile` of the repository on the Python stand-in."""
    args = ["--build-arg", f"BASE_IMAGE={PYTHON}"]
    for item in build_args:
        args += ["--build-arg", item]
    docker(
        "build",
        "-f",
        str(root / "docker" / "Dockerfile"),
        "-t",
        tag,
        *args,
        str(root),
        timeout=1800,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""The deployable artifact: one entrypoint script for the Procfile and the image, tested by running
it; the Dockerfile and compose file checked for what they promise (no image can be built here: no
base-image registry is reachable from these machines)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "entrypoint.sh"
BIN = Path(sys.executable).parent


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_release_then_web_serve_and_answer_health(tmp_path: Path) -> None:
    release = subprocess.run(
        [str(SCRIPT), "release"], env=env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert release.returncode == 0, release.stderr
    assert "database is up to date" in release.stdout
    assert (tmp_path / "data" / "connbot.db").is_file()

    port = free_port()
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            [str(SCRIPT), "web"],
            env=env(tmp_path, PORT=str(port), WEB_CONCURRENCY="1", CONNBOT_ADMIN_TOKEN="a" * 32),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline, body = time.monotonic() + 60, b""
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    body = answer.read()
            except OSError:
                assert web.poll() is None, log.read_text()
                time.sleep(0.3)
        assert body, f"the web process did not answer /healthz within 60 s:\n{log.read_text()}"
    finally:
        os.killpg(web.pid, 15)
        web.wait(timeout=30)


def test_any_other_role_is_a_connbot_command(tmp_path: Path) -> None:
    version = subprocess.run(
        [str(SCRIPT), "--version"], env=env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("connbot, version ")
    unknown = subprocess.run(
        [str(SCRIPT), "nonsense"], env=env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2 and "No such command 'nonsense'" in unknown.stderr


def test_the_procfile_and_the_image_start_through_the_entrypoint() -> None:
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert procfile == {role: f"deploy/entrypoint.sh {role}" for role in ("web", "worker", "release")}
    docker = (ROOT / "Dockerfile").read_text().splitlines()
    assert any(line.startswith("FROM python:3.11-slim") for line in docker)
    user = [line.split()[1] for line in docker if line.startswith("USER ")]
    assert user and user[-1] not in {"root", "0"}
    assert any("/healthz" in line for line in docker if "HEALTHCHECK" in line or "CMD [" in line)
    assert (
        'ENTRYPOINT ["connbot-entrypoint"]' in docker
        and "deploy/entrypoint.sh /usr/local/bin/connbot-entrypoint" in "\n".join(docker)
    )
    # the build argument EXTRAS adds extras (e.g. otel) to what pip installs, as the image's sh expands it
    (install,) = [line.split("pip install ", 1)[1].split(" ")[0] for line in docker if "pip install" in line]
    for extras, wanted in (("", "."), ("otel", ".[otel]")):
        said = subprocess.run(
            ["sh", "-c", f"echo {install}"], env={"EXTRAS": extras}, capture_output=True, text=True
        )
        assert said.stdout.strip() == wanted


def test_compose_runs_the_migration_before_web_and_worker_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker"}
    assert [services[s]["command"] for s in ("migrate", "web", "worker")] == [
        ["release"],
        ["web"],
        ["worker"],
    ]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["environment"]["CONNBOT_DATABASE_URL"].startswith("postgresql://")
        assert services[name]["environment"]["CONNBOT_QUEUE_URL"].startswith("redis://")

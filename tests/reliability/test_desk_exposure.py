"""Desk exposure. The desk and the API answer only to the public URL's host and the loopback names
(a DNS-rebinding page cannot reach the loopback desk under its own name); whether a login is needed
follows the address gunicorn really binds, not only CONNBOT_HOST; the Procfile's web command
cannot serve an open desk; unsigned Jira webhooks (CONNBOT_JIRA_INSECURE_DEV) are refused off
loopback; a short admin token is refused at start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from bot.settings import Settings, load_settings
from bot.web.app import create_app
from integrations.settings import SettingsError
from tests.reliability import procs
from tests.reliability.conftest import assert_json_error, counts, issue_event

TOKEN = "a-long-enough-admin-token-0f3a9"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "[bad"])
def test_a_foreign_host_name_is_refused_on_the_loopback_desk(make_services, host: str) -> None:
    svc = make_services()
    client = create_app(services=svc).test_client()
    for method, path in (("get", "/"), ("get", "/api/tickets"), ("get", "/prompts")):
        resp = getattr(client, method)(path, headers={"Host": host})
        assert resp.status_code == 400, (path, resp.status_code)
    resp = client.post("/api/tickets", json={"summary": "rebound"}, headers={"Host": host})
    assert "Host" in assert_json_error(resp, 400)["message"]
    assert counts(svc).tickets == 0
    assert client.get("/healthz", headers={"Host": host}).status_code == 200  # probes call by address


def test_the_public_host_and_the_loopback_names_are_served(tmp_path, make_services) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", public_url="https://desk.example.com")
    svc = make_services(settings=settings)
    client = create_app(settings, svc).test_client()
    for host in ("desk.example.com", "DESK.example.com:443", "localhost:8080", "127.0.0.1", "[::1]:8080"):
        assert client.get("/api/tickets", headers={"Host": host}).status_code == 200, host


def _env(port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CONNBOT_DATA_DIR": str(tmp_path / "data"), "PORT": str(port), **extra}


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=5).ok
    except requests.RequestException:
        return False


def _procfile_web() -> str:
    line = next(x for x in (procs.ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    return line.removeprefix("web:").strip()


def test_gunicorn_bound_beyond_loopback_asks_for_a_login_even_with_connbot_host_on_loopback(
    tmp_path: Path,
) -> None:
    """CONNBOT_HOST left at 127.0.0.1, gunicorn told `--bind 0.0.0.0`; a proxy on the same host
    forwards from 127.0.0.1. The desk must still ask for a login."""
    port = procs.free_port()
    subprocess.run(
        [str(procs.BIN / "connbot"), "db", "upgrade"],
        env={**_env(port, tmp_path)},
        check=True,
        cwd=procs.ROOT,
        capture_output=True,
    )
    web = procs.start_web(_env(port, tmp_path, CONNBOT_ADMIN_TOKEN=TOKEN), port, workers=1, host="0.0.0.0")
    try:
        base = f"http://127.0.0.1:{port}"
        procs.wait_for(lambda: _up(base), 30, "gunicorn")
        assert requests.post(base + "/api/tickets", json={"summary": "x"}, timeout=5).status_code == 401
        resp = requests.post(
            base + "/api/tickets",
            json={"summary": "x"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert resp.status_code == 201
    finally:
        procs.stop(web)


def test_the_procfile_web_command_refuses_to_serve_without_a_login(tmp_path: Path) -> None:
    port = procs.free_port()
    command = _procfile_web()
    path = f"{procs.BIN}:{os.environ['PATH']}"  # the virtualenv's gunicorn, as `make` installs it
    proc = procs.start(["sh", "-c", command], _env(port, tmp_path, PATH=path), log=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        procs.kill(proc)
        raise AssertionError("the Procfile's web command served a desk no one can log in to") from None
    assert proc.returncode != 0
    assert b"CONNBOT_ADMIN_TOKEN or CONNBOT_DESK_USERS" in out


def test_insecure_dev_is_refused_off_loopback(tmp_path, make_services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONNBOT_JIRA_INSECURE_DEV", "true")
    settings = Settings(data_dir=tmp_path / "data", host="0.0.0.0", admin_token=TOKEN)
    with pytest.raises(SettingsError, match="CONNBOT_JIRA_INSECURE_DEV"):
        create_app(settings, make_services(settings=settings))


def test_insecure_dev_on_a_socket_bound_beyond_loopback_accepts_nothing(make_services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONNBOT_JIRA_INSECURE_DEV", "true")
    svc = make_services()
    client = create_app(services=svc).test_client()
    body = issue_event("VOIP-1")
    resp = client.post(
        "/webhooks/jira",
        data=body,
        headers={"Content-Type": "application/json"},
        base_url="http://0.0.0.0:8080",  # the bound address gunicorn gives as SERVER_NAME
    )
    assert resp.status_code == 503 and "not configured" in resp.get_json()["message"]
    assert counts(svc).events == 0
    ok = client.post("/webhooks/jira", data=body, headers={"Content-Type": "application/json"})
    assert ok.status_code == 202  # the control: on a loopback socket, development goes on


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_short_admin_token_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(SettingsError, match="CONNBOT_ADMIN_TOKEN: has 5 characters"):
        load_settings({}, data_dir=tmp_path / "data", host=host, admin_token="12345")

"""Smaller breaks. A client that retries `POST /api/tickets` with the same `Idempotency-Key` (its
first answer lost to a reset) files one ticket; an oversized chunked body (no Content-Length) is
answered 413 by gunicorn's app, not read truncated and refused as unsigned; `make` and CI install
from the constraints file, so every install has the same versions."""

from __future__ import annotations

import http.client
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.web.app import create_app
from tests.fakes.jira import configure
from tests.reliability import procs
from tests.reliability.conftest import JIRA_SECRET, assert_json_error, counts, jira_headers


def test_a_retried_filing_with_the_same_idempotency_key_files_once(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    client = create_app(services=svc).test_client()
    body = {"summary": "cannot connect", "user": "1001"}
    first = client.post("/api/tickets", json=body, headers={"Idempotency-Key": "retry-7"})
    again = client.post("/api/tickets", json=body, headers={"Idempotency-Key": "retry-7"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json() == first.get_json()
    other = client.post("/api/tickets", json=body, headers={"Idempotency-Key": "retry-8"})
    assert other.status_code == 201 and other.get_json()["key"] != first.get_json()["key"]
    assert counts(svc).tickets == 2 and counts(svc).runs == 2
    bad = client.post("/api/tickets", json=body, headers={"Idempotency-Key": "x" * 256})
    assert "Idempotency-Key" in assert_json_error(bad, 400)["message"]


@pytest.fixture
def gunicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure(monkeypatch)
    port = procs.free_port()
    env = {"CONNBOT_DATA_DIR": str(tmp_path / "data"), "CONNBOT_JIRA_WEBHOOK_SECRET": JIRA_SECRET}
    subprocess.run([str(procs.BIN / "connbot"), "db", "upgrade"], env=env, check=True, cwd=procs.ROOT)
    web = procs.start_web(env, port, workers=1)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(base + "/healthz", timeout=5).ok
        except requests.RequestException:
            return False

    try:
        procs.wait_for(up, 30, "gunicorn")
        yield f"127.0.0.1:{port}"
    finally:
        procs.stop(web)


def _chunked(where: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection(where, timeout=30)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    conn.request("POST", "/webhooks/jira", body=chunks, headers=headers, encode_chunked=True)
    try:
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


def test_an_oversized_chunked_body_is_a_413(gunicorn: str) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    status, text, headers = _chunked(gunicorn, body, {**jira_headers(body), "Transfer-Encoding": "chunked"})
    assert status == 413, text[:300]
    assert headers["X-Content-Type-Options"] == "nosniff"  # the middleware's own answer, too
    small = b'{"webhookEvent": 1}'
    status, text, _ = _chunked(gunicorn, small, {**jira_headers(small), "Transfer-Encoding": "chunked"})
    assert status == 400, text[:300]  # read whole and signed: refused for its content, not as unsigned


def test_make_and_ci_install_from_the_constraints_file() -> None:
    root = procs.ROOT
    constraints = root / "constraints.txt"
    pins = [line for line in constraints.read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", p) for p in pins), pins[:5]
    names = {re.split(r"[\[=]", p)[0].lower().replace("_", "-") for p in pins}
    for needed in ("flask", "sqlalchemy", "gunicorn", "slack-bolt", "psycopg", "pytest", "hypothesis"):
        assert needed in names, needed
    assert "-c constraints.txt" in (root / "Makefile").read_text()

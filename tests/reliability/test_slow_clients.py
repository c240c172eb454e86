"""Slow clients. Fifty connections that send the start of a `POST /webhooks/jira` body and then wait
do not freeze the web process: gunicorn run as the Procfile runs it still answers `/healthz` and
a signed webhook within 1 s, and each slow body is cut off with 408 after CONNBOT_BODY_SECONDS."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.reliability import procs
from tests.reliability.conftest import JIRA_SECRET, issue_event, jira_headers

SLOW = 50
TOKEN = "a-long-enough-admin-token-0f3a9"


@pytest.fixture
def procfile_web(tmp_path: Path) -> Iterator[str]:
    """The Procfile's web command, as a platform runs it (PORT set, the virtualenv on PATH)."""
    port = procs.free_port()
    env = {
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
        "CONNBOT_ADMIN_TOKEN": TOKEN,
        "CONNBOT_JIRA_WEBHOOK_SECRET": JIRA_SECRET,
        "CONNBOT_JIRA_URL": "https://example.atlassian.net",
        "CONNBOT_JIRA_EMAIL": "bot@example.com",
        "CONNBOT_JIRA_API_TOKEN": "api-token-not-real",
        "CONNBOT_BODY_SECONDS": "5",
        "PORT": str(port),
        "PATH": f"{procs.BIN}:{os.environ['PATH']}",
    }
    subprocess.run(
        [str(procs.BIN / "connbot"), "db", "upgrade"],
        env={**os.environ, **env},
        check=True,
        cwd=procs.ROOT,
        capture_output=True,
    )
    line = next(x for x in (procs.ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    web = procs.start(["sh", "-c", line.removeprefix("web:").strip()], env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(base + "/healthz", timeout=5).ok
        except requests.RequestException:
            return False

    try:
        procs.wait_for(up, 60, "gunicorn")
        yield base
    finally:
        procs.stop(web)


@pytest.mark.slow
def test_fifty_slow_clients_leave_healthz_and_a_signed_webhook_answering(procfile_web: str) -> None:
    port = int(procfile_web.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for i in range(SLOW):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(
                f"POST /webhooks/jira HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f'X-Hub-Signature: sha256=00\r\nContent-Length: 100000\r\n\r\n{{"slow": {i}'.encode()
            )
            slow.append(conn)
        time.sleep(1)  # every slow connection is in the server's hands by now
        for _ in range(3):
            assert requests.get(procfile_web + "/healthz", timeout=1).ok
        body = issue_event("VOIP-1")
        resp = requests.post(
            procfile_web + "/webhooks/jira", data=body, headers=jira_headers(body, "fast-1"), timeout=1
        )
        assert resp.status_code == 202, resp.text
        # Each slow body is answered 408 once CONNBOT_BODY_SECONDS (5 s here) have passed.
        slow[0].settimeout(15)
        answer = slow[0].recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    finally:
        for conn in slow:
            conn.close()

"""`connbot pbx check` against real sockets on loopback: an ARI HTTP server and a SIP responder for
the healthy instance; the failing one refuses connbot's ARI password and its SIP port is closed."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from bot.cli.main import main
from bot.state.store import Store
from tests.fakes.fleet import closed_udp_port, instance, use_directory
from tests.fakes.sip import sip_responder
from tests.unit.integrations.wire_fakes import fixture


class AriServer(ThreadingHTTPServer):
    """Asterisk's ARI as far as `pbx.health` reads it, for one user and password."""

    def __init__(self, password: str):
        self.auth = "Basic " + base64.b64encode(f"connbot:{password}".encode()).decode()
        super().__init__(("127.0.0.1", 0), AriHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class AriHandler(BaseHTTPRequestHandler):
    server: AriServer

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.server.auth:
            return self._send(401, {"message": "Authentication required"})
        path = self.path.split("?")[0].removeprefix("/ari")
        if path == "/asterisk/ping":
            return self._send(200, fixture("pbx", "ping.json"))
        if path == "/asterisk/info":
            return self._send(200, fixture("pbx", "info.json"))
        if path.startswith("/asterisk/modules/"):
            return self._send(
                200, {**fixture("pbx", "module.json", name=path.rsplit("/", 1)[1]), "status": "Running"}
            )
        return self._send(404, {"message": "Resource not found"})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def ari_servers() -> Iterator[tuple[AriServer, AriServer]]:
    servers = (AriServer("acme-ari-pw"), AriServer("the-real-globex-pw"))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def sip_port() -> Iterator[int]:
    with sip_responder("200 OK") as port:
        yield port


def test_check_all_reports_one_healthy_and_one_failing_instance_and_list_shows_it(
    ari_servers, sip_port, monkeypatch, tmp_path, settings
):
    acme = instance("acme", ["ACME"], sip_port)
    globex = instance("globex", ["GLOBEX"], closed_udp_port())
    acme["ari"]["url"], globex["ari"]["url"] = ari_servers[0].url, ari_servers[1].url
    use_directory(monkeypatch, tmp_path, {"instances": [acme, globex]})
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(settings.data_dir))
    Store(settings.sqlalchemy_url).upgrade()

    result = CliRunner().invoke(main, ["pbx", "check", "--all"])
    assert result.exit_code == 1, result.output
    acme_lines = [line for line in result.output.splitlines() if line.startswith("acme")]
    globex_lines = [line for line in result.output.splitlines() if line.startswith("globex")]
    assert [" ".join(line.split()[1:3]) for line in acme_lines] == [
        "ari reachable",
        "ari credentials",
        "sip modules",
        "sip port",
    ]
    assert [line.split()[3] for line in acme_lines] == ["ok"] * 4
    assert [line.split()[3] for line in globex_lines] == ["ok", "FAIL", "FAIL", "FAIL"]
    assert "Asterisk refused connbot on ARI (401)" in globex_lines[1]
    assert "not checked" in globex_lines[2]
    assert "globex-ari-pw" not in result.output

    assert CliRunner().invoke(main, ["pbx", "check", "acme"]).exit_code == 0
    listing = CliRunner().invoke(main, ["pbx", "list"])
    assert listing.exit_code == 0
    assert "acme             customers: ACME" in listing.output
    text = listing.output.split("\nglobex")[1]
    assert "last check: FAIL at" in text and "ari credentials: Asterisk refused connbot on ARI (401)" in text
    assert "last check: ok at" in listing.output.split("\nglobex")[0]


def test_check_needs_a_known_name_or_all(monkeypatch, tmp_path):
    use_directory(monkeypatch, tmp_path, {"instances": [instance("acme", [], 5060)]})
    assert "no instance 'nope'; known: acme" in CliRunner().invoke(main, ["pbx", "check", "nope"]).output
    assert CliRunner().invoke(main, ["pbx", "check"]).exit_code == 2

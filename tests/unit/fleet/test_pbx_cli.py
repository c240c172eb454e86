"""`connbot pbx check` against real sockets on loopback: the ARI simulator and a SIP responder for
the healthy instance; the failing one refuses connbot's ARI password and its SIP port is closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from bot.cli.main import main
from bot.state.store import Store
from simulators import ari
from simulators.serve import Server
from tests.fakes.fleet import closed_udp_port, instance, use_directory
from tests.fakes.sip import sip_responder


def ari_server(password: str) -> Server:
    """The ARI simulator (simulators/ari.py) on loopback: an Asterisk whose SIP stack runs, with
    connbot's ARI password `password`."""
    return Server(ari.create(ari.Asterisk(ari_password=password)))


@pytest.fixture
def ari_servers() -> Iterator[tuple[Server, Server]]:
    with ari_server("acme-ari-pw") as acme, ari_server("the-real-globex-pw") as globex:
        yield acme, globex


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

"""net.check_path against real sockets on loopback: SIP responders over UDP, TCP and TLS, closed
ports, certificates that are valid, expired, untrusted or for another name, names that do not resolve."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from wire_fakes import inp, sip_settings

from integrations.net import client as probes
from integrations.net.adapter import NetAdapter, _said, _seen
from integrations.net.settings import NetSettings
from integrations.pbx.settings import PbxSettings
from simulators.sip import SipPort


@pytest.fixture
def responders() -> Iterator[list[SipPort]]:
    made: list[SipPort] = []
    yield made
    for r in made:
        r.stop()


def serve(
    responders: list[SipPort], transport: str, status: str | None = "401 Unauthorized", **kw: Any
) -> SipPort:
    """The SIP simulator (simulators/sip.py) answering 401 like Asterisk, over `transport`."""
    responders.append(SipPort(status, transport=transport, **kw).start())
    return responders[-1]


def closed_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def net(
    port: int, transport: str = "udp", host: str = "127.0.0.1", ari: int | None = None, **over: Any
) -> NetAdapter:
    settings = NetSettings.model_validate(
        {"net_timeout": 0.5, "net_probes": 4, "net_probe_interval": 0.0, **over}
    )
    pbx = PbxSettings.model_validate({"ari_url": f"http://127.0.0.1:{ari}"}) if ari else None
    return NetAdapter.from_settings(
        sip_settings(sip_host=host, sip_port=port, sip_transport=transport), settings, pbx
    )


def check(adapter: NetAdapter) -> tuple[str, str, dict[str, Any]]:
    res = adapter.check_path(inp())
    return res.outcome, res.summary, res.evidence


# -- SIP OPTIONS
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sip_answering_401_is_a_healthy_path(responders: list[SipPort], transport: str) -> None:
    r = serve(responders, transport)
    out, summary, ev = check(net(r.port, transport))
    assert out == "ok" and "SIP/2.0 401 Unauthorized" in summary
    assert ev["stats"]["sent"] == 4 and ev["stats"]["answered"] == 4 and ev["stats"]["loss_pct"] == 0
    assert r.seen >= 4


def test_the_ari_port_is_probed_too(responders: list[SipPort]) -> None:
    r = serve(responders, "udp")
    ari = closed_port()
    res = net(r.port, ari=ari).check_path(inp())
    assert res.outcome == "tcp_refused" and res.evidence["probes"][0]["probe"] == "tcp_ari"
    assert res.summary == (
        f"The PBX host 127.0.0.1 refuses connections on its ARI port {ari} (TCP): nothing listens "
        "there, or a firewall rejects them."
    )
    assert res.facts["ari"] == "refused" and res.facts["sip_port"] == "answers"


def test_a_stopped_asterisk_refuses_ari_and_sip_alike() -> None:
    """ARI refused: SIP's port is probed once all the same, so the findings show both refusals."""
    ari, sip = closed_port(), closed_port(socket.SOCK_DGRAM)
    res = net(sip, ari=ari).check_path(inp())
    assert res.outcome == "tcp_refused" and [p["probe"] for p in res.evidence["probes"]] == [
        "tcp_ari",
        "sip_options_udp",
    ]
    assert res.facts["ari"] == "refused" and res.facts["sip_port"] == "refuses"
    assert res.summary.startswith(f"The PBX host 127.0.0.1 refuses connections on its ARI port {ari} (TCP)")


def test_a_silent_sip_server_is_no_response(responders: list[SipPort]) -> None:
    r = serve(responders, "udp", status=None)
    res = net(r.port, net_probes=2, net_timeout=0.2).check_path(inp())
    assert res.outcome == "sip_no_response" and r.seen == 2 and res.facts["sip_port"] == "silent"
    assert res.summary == (
        f"The PBX host 127.0.0.1 does not answer SIP OPTIONS on its SIP port {r.port} (UDP): "
        "no answer within 0.2 s."
    )


def test_nothing_listening_on_udp_is_a_refusal_not_silence() -> None:
    """ICMP port unreachable proves the host was reached: the outcome stays the playbook's
    `unreachable` (there is no UDP refusal among its outcomes), the evidence and the words say refused."""
    port = closed_port(socket.SOCK_DGRAM)
    res = net(port, net_probes=1).check_path(inp())
    assert res.outcome == "unreachable" and res.facts["sip_port"] == "refuses"
    assert res.evidence["probes"][0]["data"] == {"icmp": "port_unreachable"}
    assert res.summary == (
        f"The PBX host 127.0.0.1 refuses connections on its SIP port {port} (UDP: ICMP port "
        "unreachable): nothing listens there, or a firewall rejects them."
    )


def test_a_closed_tcp_port_is_refused() -> None:
    port = closed_port()
    res = net(port, "tcp").check_path(inp())
    assert res.outcome == "tcp_refused" and res.evidence["probes"][0]["probe"] == "tcp_sip"
    assert res.facts["sip_port"] == "refuses"
    assert res.summary == (
        f"The PBX host 127.0.0.1 refuses connections on its SIP port {port} (TCP): nothing listens "
        "there, or a firewall rejects them."
    )


@pytest.mark.parametrize(
    "probe, said, sip_port",
    [
        (
            probes.Probe(
                "sip_options_udp", "10.0.0.9:5060/udp", "unreachable", "[Errno 113] No route to host"
            ),
            "connbot cannot reach the PBX host 10.0.0.9 on its SIP port 5060 (UDP): "
            "[Errno 113] No route to host.",
            None,
        ),
        (
            probes.Probe("tcp_sip", "10.0.0.9:5060", "tcp_timeout", "timed out"),
            "The PBX host 10.0.0.9 does not answer on its SIP port 5060 (TCP): the connection timed out.",
            "silent",
        ),
    ],
)
def test_no_route_and_a_timeout_are_no_refusal(probe: probes.Probe, said: str, sip_port: str | None) -> None:
    """What the probes return when the kernel says EHOSTUNREACH, or when a connect times out (no such
    host on loopback): neither is a refusal of the port."""
    assert not probe.refused and _said(probe) == said
    assert _seen([probe], "udp").get("sip_port") == sip_port


def test_loss_degrades_the_path(responders: list[SipPort]) -> None:
    r = serve(responders, "udp", answer_every=2)
    out, summary, ev = check(net(r.port, net_timeout=0.2))
    assert out == "degraded" and ev["stats"]["loss_pct"] == 50.0 and "loss" in summary


def test_slow_answers_degrade_the_path(responders: list[SipPort]) -> None:
    r = serve(responders, "udp")
    out, summary, _ = check(net(r.port, net_rtt_max_ms=0.000001))
    assert out == "degraded" and "round trip" in summary


def test_a_name_that_does_not_resolve() -> None:
    out, summary, ev = check(net(5060, host="pbx.connbot-test.invalid"))
    assert out == "dns_failure" and ev["probes"][0]["probe"] == "dns"
    assert (
        summary == f"The PBX's name pbx.connbot-test.invalid does not resolve ({ev['probes'][0]['detail']})."
    )


def test_a_name_that_resolves_is_probed(responders: list[SipPort]) -> None:
    r = serve(responders, "udp")
    out, _, ev = check(net(r.port, host="localhost", net_timeout=0.3))
    assert out == "ok" and [p["probe"] for p in ev["probes"]][:2] == ["dns", "dns_srv"]


# -- TLS
@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA, name: str = "127.0.0.1", expired: bool = False) -> ssl.SSLContext:
    now = datetime.now(UTC)
    cert = (
        ca.issue_cert(name, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
        if expired
        else ca.issue_cert(name)
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def test_tls_with_a_valid_certificate(responders: list[SipPort], ca: trustme.CA, ca_file: Path) -> None:
    r = serve(responders, "tls", tls=tls_server(ca))
    out, _summary, ev = check(net(r.port, "tls", net_tls_ca=ca_file, net_probes=2))
    tls = next(p for p in ev["probes"] if p["probe"] == "tls")
    assert out == "ok" and tls["data"]["days_left"] >= 300 and tls["data"]["version"].startswith("TLS")


def test_tls_with_an_expired_certificate(responders: list[SipPort], ca: trustme.CA, ca_file: Path) -> None:
    r = serve(responders, "tls", tls=tls_server(ca, expired=True))
    out, summary, ev = check(net(r.port, "tls", net_tls_ca=ca_file))
    tls = next(p for p in ev["probes"] if p["probe"] == "tls")
    assert out == "tls_expired" and tls["data"]["days_left"] < 0
    assert summary == (
        f"TLS to 127.0.0.1:{r.port} fails: its certificate has expired "
        "(certificate has expired (verify code 10))."
    )


def test_tls_with_an_untrusted_certificate(responders: list[SipPort], ca: trustme.CA) -> None:
    r = serve(responders, "tls", tls=tls_server(ca))
    assert check(net(r.port, "tls"))[0] == "tls_untrusted"


def test_tls_with_a_certificate_for_another_name(
    responders: list[SipPort], ca: trustme.CA, ca_file: Path
) -> None:
    r = serve(responders, "tls", tls=tls_server(ca, name="other.example.test"))
    assert check(net(r.port, "tls", net_tls_ca=ca_file))[0] == "tls_hostname_mismatch"


def test_tls_spoken_to_a_plain_port(responders: list[SipPort]) -> None:
    r = serve(responders, "tcp")
    out, _summary, _ = check(net(r.port, "tls"))
    assert out == "tls_handshake_failed"


# -- a real SIP peer
SIPP_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options responder">
  <recv request="OPTIONS"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


def test_options_to_a_real_sipp_uas(tmp_path: Path) -> None:
    sipp = shutil.which("sipp")
    if sipp is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "sipp (Debian package sip-tester) is not installed; .ci/run installs it when run as root"
            )
        pytest.skip("sipp (Debian package sip-tester) is not installed")
    scenario = tmp_path / "uas.xml"
    scenario.write_text(SIPP_UAS)
    port = closed_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(
        [
            sipp,
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        probe = probes.sip_options("127.0.0.1", port, "udp", 0.5)
        while not probe.ok and time.monotonic() < deadline and proc.poll() is None:
            probe = probes.sip_options("127.0.0.1", port, "udp", 0.5)
        assert probe.ok and probe.detail == "SIP/2.0 200 OK"
    finally:
        proc.kill()
        proc.wait(5)

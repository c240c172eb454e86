"""Each seed case, walked through the real playbook with every adapter at work and the outside
systems faked at the wire (ARI, the app backend), real sockets (network) and the real PostgreSQL.

The walk stands in for the engine: automated steps run their action, approvals are granted, a
human step or an end stops the walk. The assertion is on the path taken and the finding written.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from wire_fakes import FAST, UNAUTHORIZED, FakeAri, app_adapter, app_settings, pbx_adapter, sip_settings

from integrations.base import ActionInput, AdapterError, NotConfiguredError, Registry, UnsupportedError
from integrations.logs.adapter import LogsAdapter
from integrations.logs.settings import LogsSettings
from integrations.net.adapter import NetAdapter
from integrations.net.settings import NetSettings
from playbook import engine
from playbook.diagnosis import Cause
from playbook.loader import load
from simulators.app_api import Device
from simulators.sip import SipPort
from tests.fakes.sip import sip_responder

ALL = ("app", "pbx", "net", "logs")


class Walk:
    def __init__(self, sip_port: int, db_url: str | None = None):
        pbx = pbx_adapter(**({"pbx_db_url": db_url, "pbx_db_timeout": 1} if db_url else {}))
        net = NetAdapter.from_settings(
            sip_settings(sip_port=sip_port), NetSettings(net_timeout=0.3, net_probes=2, net_probe_interval=0)
        )
        logs = LogsAdapter.from_settings(LogsSettings(), app_settings(), policy=FAST)
        self.registry = Registry([], [app_adapter(sip_port=sip_port), pbx, net, logs])
        self.playbook = load(None, self.registry.catalogue)
        self.findings: list[tuple[str, str, str]] = []
        self.cause: Cause | None = None  # the leading cause of the question the walk stopped at

    def run(self, facts: dict[str, Any] | None = None) -> str:
        """Advance through the real engine until a person is asked (approvals are given) or the end;
        the step reached."""
        facts = dict(facts or {})
        pb, pos = self.playbook, engine.start(self.playbook)
        for _ in range(60):
            plan = engine.plan(pb, pos, self.registry.available, facts=facts)
            if isinstance(plan, engine.Finish):
                return pos.step
            if isinstance(plan, engine.Escalate):
                pos = engine.continue_after(pb, pos, plan)
            elif isinstance(plan, engine.Decide):
                pos = engine.decide(pb, pos, plan)
            elif isinstance(plan, engine.Ask):
                if plan.kind != "approval":
                    self.cause = plan.cause
                    return pos.step  # a person is asked
                pos = engine.approve(pos)
            else:
                try:
                    res = self.registry.execute(
                        plan.step.action or "", ActionInput(ticket_key="VOIP-7", user="1001", facts=facts)
                    )
                except (NotConfiguredError, UnsupportedError):
                    return pos.step  # a person is asked
                except AdapterError as exc:
                    self.findings.append((pos.step, "failure", str(exc)))
                    facts.update(exc.facts)
                    pos = engine.follow(pb, pos, engine.Failed(str(exc)))
                    continue
                self.findings.append((pos.step, res.outcome, res.summary))
                facts.update(res.facts)
                pos = engine.follow(pb, pos, engine.Outcome(res.outcome))
        raise AssertionError("the walk did not end")

    def outcome(self, step: str) -> str:
        return next(o for s, o, _ in self.findings if s == step)

    def summary(self, step: str) -> str:
        return next(t for s, _, t in self.findings if s == step)


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def healthy_sip() -> Iterator[int]:
    """A SIP stack on loopback UDP that answers every OPTIONS with 401, like Asterisk; yields its port."""
    with sip_responder("401 Unauthorized") as port:
        yield port


REGISTRATION_TIMEOUT = {"sip_code": 408, "reason": "Request Timeout", "local_error": "timeout"}


def same_password(ari: FakeAri, phone: Device) -> bool:
    return phone.password == ari.objects["auth"].get("1001", {}).get("password")


def test_healthy_after_reconnect_closes_as_transient(ari: FakeAri, phone: Device) -> None:
    walk = Walk(5060)
    assert walk.run() == "close_transient"
    assert walk.outcome("check_status") == "failed" and walk.outcome("force_reconnect") == "reconnected"


def test_wrong_pbx_port_in_the_app_is_fixed(ari: FakeAri, phone: Device) -> None:
    phone.server["port"] = 5080
    phone.failure = lambda device: None if device.server["port"] == 5060 else REGISTRATION_TIMEOUT
    walk = Walk(5060)
    assert walk.run() == "close_config_fixed"
    assert walk.outcome("check_config") == "wrong_port" and "5080" in walk.summary("check_config")
    assert phone.server["port"] == 5060


def test_missing_account_is_created(ari: FakeAri, phone: Device) -> None:
    phone.failure = lambda device: None if same_password(ari, device) else UNAUTHORIZED
    ari.objects["endpoint"].clear()
    walk = Walk(5060)
    assert walk.run() == "close_account_fixed"
    assert walk.outcome("check_account") == "missing" and walk.outcome("create_account") == "created"
    assert same_password(ari, phone)


def test_password_mismatch_is_reset(ari: FakeAri, phone: Device) -> None:
    phone.failure = lambda device: None if same_password(ari, device) else UNAUTHORIZED
    walk = Walk(5060)
    assert walk.run() == "close_password_fixed"
    assert walk.outcome("record_error") == "found" and "401" in walk.summary("record_error")
    assert (
        walk.outcome("compare_password") == "password_mismatch"
        and walk.outcome("reset_password") == "updated_connected"
    )


def _still_failing(phone: Device, sip_port: int) -> None:
    """The app keeps timing out although it is set up right (its registrar: the PBX at `sip_port`)."""
    phone.failure = lambda device: REGISTRATION_TIMEOUT
    phone.password = "s3cret-pw"  # the PBX's
    phone.server["port"] = sip_port


def test_network_path_broken(ari: FakeAri, phone: Device) -> None:
    """A broken path is silence: the SIP port gets the OPTIONS and nothing comes back, no ICMP."""
    with SipPort(None) as silent:
        _still_failing(phone, silent.port)
        walk = Walk(silent.port)
        assert walk.run() == "fix_cause" and walk.cause and walk.cause.id == "server_network_fault"
    assert walk.outcome("compare_password") == "match" and walk.outcome("check_network") == "sip_no_response"
    assert walk.summary("check_network") == (
        f"The PBX host 127.0.0.1 does not answer SIP OPTIONS on its SIP port {silent.port} (UDP): "
        "no answer within 0.3 s."
    )
    assert (
        walk.summary("check_device_network")
        == "From the user's device, 127.0.0.1 does not answer SIP OPTIONS."
    )


def test_sip_port_refusing_is_no_broken_path(ari: FakeAri, phone: Device) -> None:
    """res_pjsip.so not running: ARI answers and the SIP port answers with ICMP port unreachable, which
    proves the host was reached."""
    port = closed_udp_port()
    _still_failing(phone, port)
    ari.modules["res_pjsip.so"] = "Not Running"
    walk = Walk(port)
    assert walk.run() == "fix_cause" and walk.cause and walk.cause.id == "sip_stack_down"
    assert walk.outcome("check_network") == "unreachable"
    assert walk.summary("check_network") == (
        f"The PBX host 127.0.0.1 refuses connections on its SIP port {port} (UDP: ICMP port "
        "unreachable): nothing listens there, or a firewall rejects them."
    )
    assert walk.outcome("check_device_network") == "unreachable"
    assert walk.summary("check_device_network") == (
        "From the user's device, 127.0.0.1 refuses connections for SIP over UDP: nothing listens "
        "there, or a firewall rejects them."
    )
    assert walk.summary("check_asterisk") == "Asterisk answers but res_pjsip.so is not running."


def test_asterisk_module_not_running(ari: FakeAri, phone: Device, healthy_sip: int) -> None:
    _still_failing(phone, healthy_sip)
    ari.modules["res_pjsip_registrar.so"] = "Not Running"
    walk = Walk(healthy_sip)
    assert walk.run() == "fix_cause" and walk.cause and walk.cause.id == "sip_stack_down"
    assert walk.outcome("check_network") == "ok" and walk.outcome("check_asterisk") == "module_not_running"
    assert "res_pjsip_registrar.so" in walk.summary("check_asterisk")


def test_database_down(ari: FakeAri, phone: Device, healthy_sip: int) -> None:
    _still_failing(phone, healthy_sip)
    ari.modules["res_config_pgsql.so"] = "Running"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        unused = s.getsockname()[1]
    walk = Walk(healthy_sip, db_url=f"postgresql://postgres@127.0.0.1:{unused}/test")
    assert walk.run() == "fix_cause" and walk.cause and walk.cause.id == "realtime_db_down"
    assert walk.outcome("check_asterisk") == "up" and walk.outcome("check_database") == "db_unreachable"


def test_only_the_client_logs_show_the_cause(ari: FakeAri, phone: Device, healthy_sip: int) -> None:
    _still_failing(phone, healthy_sip)
    phone.log = [
        "10:00:00.100 pjsua_acc.c sip:1001@pbx.example.com: registration success, status=200 (OK), will "
        "re-register in 300 seconds",
        "10:05:00.000 pjsua_core.c Error sending keep-alive packet: Network is unreachable",
    ]
    walk = Walk(healthy_sip)
    assert walk.run() == "fix_cause" and walk.cause and walk.cause.id == "nat_keepalive"
    assert [walk.outcome(s) for s in ("check_network", "check_asterisk", "check_database")] == [
        "ok",
        "up",
        "no_database",
    ]
    assert walk.outcome("read_client_logs") == "nat_keepalive" and "keep-alive" in walk.summary(
        "read_client_logs"
    )

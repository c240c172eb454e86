"""Findings: what each adapter observed, typed, beside its outcome; a refused connection is a finding,
never retried. ARI and the app backend are faked at the wire (a closed port refuses for real)."""

from __future__ import annotations

import re
import socket
import time

import pytest
from pydantic import SecretStr, ValidationError
from wire_fakes import FAST, FakeAri, app_adapter, inp, pbx_adapter

from integrations import http
from integrations.base import ActionResult, PermanentError, RefusedError
from integrations.pbx.adapter import PbxAdapter
from integrations.pbx.settings import PbxSettings
from simulators.app_api import Backend, Device
from tests.fakes.sip import sip_responder


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_not_retried() -> None:
    policy = http.RetryPolicy(attempts=5, total=30.0, backoff=1.0, max_backoff=1.0, sleep=time.sleep)
    start = time.monotonic()
    port = closed_port()
    with pytest.raises(RefusedError) as err:
        http.request(
            http.session(), "GET", f"http://127.0.0.1:{port}/ari/asterisk/ping", policy, service="ARI"
        )
    assert time.monotonic() - start < 1.0  # one attempt, no backoff
    # The message reaches tickets: it names the server by what it is, host and port, not the path.
    assert str(err.value) == f"ARI at 127.0.0.1:{port} refused the connection"


def test_a_finding_outside_its_vocabulary_is_rejected_naming_it() -> None:
    with pytest.raises(ValidationError, match="finding ari"):
        ActionResult(outcome="up", summary="s", facts={"ari": "sleepy"})
    res = ActionResult(outcome="up", summary="s", facts={"device_id": "dsk-1", "config_lookup_ms": "12.5"})
    assert res.facts == {"device_id": "dsk-1", "config_lookup_ms": 12.5}


def refused_pbx(**over: object) -> PbxAdapter:
    settings = PbxSettings.model_validate(
        {
            "ari_url": f"http://127.0.0.1:{closed_port()}",
            "ari_username": "connbot",
            "ari_password": SecretStr("ari-pw"),
            **over,
        }
    )
    return PbxAdapter.from_settings(settings, None, policy=FAST)


def test_asterisk_stopped_the_account_step_fails_at_once_saying_ari_refused() -> None:
    start = time.monotonic()
    with pytest.raises(PermanentError) as err:
        refused_pbx().get_account(inp())
    assert time.monotonic() - start < 1.0
    assert err.value.facts == {"pbx": "127.0.0.1", "ari": "refused"}
    assert re.fullmatch(r"ARI at 127\.0\.0\.1:\d+ refused the connection", str(err.value))


def test_asterisk_stopped_health_says_down_with_the_finding() -> None:
    res = refused_pbx().health(inp())
    assert res.outcome == "down"
    assert re.fullmatch(
        r"Asterisk on 127\.0\.0\.1 does not answer: ARI at 127\.0\.0\.1:\d+ refused the connection\.",
        res.summary,
    )
    assert res.facts["ari"] == "refused"


def test_account_findings_carry_the_lookup_status_and_time(ari: FakeAri) -> None:
    res = pbx_adapter(with_app=False).get_account(inp())
    assert res.outcome == "exists"
    assert res.facts["account"] == "exists" and res.facts["ari"] == "reachable"
    assert res.facts["config_lookup"] == "found" and res.facts["config_lookup_status"] == 200
    assert res.facts["user_known_pbx"] is True and res.facts["config_lookup_ms"] >= 0
    missing = pbx_adapter(with_app=False).get_account(inp(user="1009"))
    assert missing.facts["account"] == "missing" and missing.facts["user_known_pbx"] is False
    assert missing.facts["config_lookup_status"] == 404 and "404" in missing.summary


def test_an_incomplete_account_is_repaired_by_creating_only_the_missing_objects(ari: FakeAri) -> None:
    del ari.objects["auth"]["1001"]
    before = dict(ari.objects["endpoint"]["1001"])
    found = pbx_adapter(with_app=False).get_account(inp())
    assert found.outcome == "incomplete" and found.facts["account_missing"] == ["auth 1001"]
    res = pbx_adapter(with_app=False).create_account(inp())
    assert res.outcome == "created" and res.evidence["created"] == ["auth 1001"]
    assert [(kind, oid) for kind, oid, _ in ari.puts] == [("auth", "1001")]
    assert ari.objects["endpoint"]["1001"] == before  # the endpoint was not touched
    assert "created only its missing auth 1001" in res.summary
    assert res.facts["config_writable"] is True and res.facts["account"] == "exists"


def test_a_complete_account_is_never_overwritten(ari: FakeAri) -> None:
    with pytest.raises(PermanentError, match="complete; not overwriting"):
        pbx_adapter(with_app=False).create_account(inp())
    assert ari.puts == []


def test_a_refused_write_is_a_finding(ari: FakeAri) -> None:
    ari.objects["endpoint"].clear()
    ari.read_only_backend = True
    res = pbx_adapter(with_app=False).create_account(inp())
    assert res.outcome == "forbidden_readonly_backend" and res.facts["config_writable"] is False


def test_slow_404_lookups_are_a_database_that_does_not_serve_accounts(ari: FakeAri) -> None:
    """The realtime database behind Asterisk is down: look-ups are slow and answer 404."""
    ari.modules["res_config_pgsql.so"] = "Running"
    ari.objects["endpoint"].clear()
    ari.lookup_delay = 0.08
    res = pbx_adapter(with_app=False, pbx_db_slow_ms=50).check_database(inp())
    assert res.outcome == "asterisk_db_link_down" and "answered 404" in res.summary
    assert res.facts["realtime_db"] == "link_down" and res.facts["config_lookup"] == "not_found"


def test_status_findings_classify_the_registration_error(phone: Device) -> None:
    res = app_adapter().get_status(inp())
    assert res.facts["registration"] == "failed" and res.facts["registration_error"] == "auth"
    assert res.facts["user_known_app"] is True
    phone.last_error = {"sip_code": None, "reason": None, "local_error": "connection_refused"}
    assert app_adapter().get_status(inp()).facts["registration_error"] == "refused"


def test_a_user_nobody_knows_is_a_finding(app_api: Backend) -> None:
    with pytest.raises(PermanentError) as err:
        app_adapter().get_status(inp(user="1009"))
    assert err.value.facts == {"user_known_app": False}


def test_the_device_side_network_test_passes(phone: Device) -> None:
    with sip_responder("401 Unauthorized") as port:
        phone.server["port"] = port
        res = app_adapter().test_network(inp())
    assert res.outcome == "ok" and res.facts["device_path"] == "ok"
    assert re.search(
        r"127\.0\.0\.1 answers SIP \(SIP/2\.0 401 Unauthorized\) in [\d.]+ ms, 0 % loss", res.summary
    )


def test_the_device_side_network_test_sees_a_user_side_firewall(phone: Device) -> None:
    phone.server["transport"] = "tcp"
    phone.blocked = True
    res = app_adapter().test_network(inp())
    assert res.outcome == "tcp_timeout" and res.facts["device_path"] == "tcp_timeout"
    assert (
        res.summary
        == "From the user's device, TCP port 5060 of 127.0.0.1 does not answer (connection timed out)."
    )


def test_the_device_side_network_test_says_a_refusal_reached_the_host(phone: Device) -> None:
    phone.server.update(transport="tcp", port=closed_port())
    res = app_adapter().test_network(inp())
    assert res.outcome == "tcp_refused" and res.facts["device_path"] == "tcp_refused"
    assert res.summary == (
        f"From the user's device, 127.0.0.1 refuses connections on TCP port {phone.server['port']}: "
        "nothing listens there, or a firewall rejects them."
    )


def test_a_device_without_the_network_test_says_so(phone: Device) -> None:
    phone.capabilities["network_test"] = False
    res = app_adapter().test_network(inp())
    assert res.outcome == "unsupported" and res.facts["device_path"] == "unsupported"

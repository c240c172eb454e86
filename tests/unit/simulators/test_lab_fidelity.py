"""The lab's simulators fail the way the real systems do (issue 13), checked at the wire: with
plain HTTP, UDP sockets and the App Management API contract, never through connbot's adapters."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from bot.lab import Lab
from bot.lab.scenarios import Instance
from simulators.ari import ARI_USER

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "app-management-api.yaml"
DB_WAIT = 0.3


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("data"), reconnect_seconds=0.05, db_wait=DB_WAIT) as running:
        yield running


def ari(inst: Instance, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{inst.pbx.ari_url}/ari/{path}", auth=(ARI_USER, inst.keys["ari"]), timeout=5, **kwargs
    )


def options(port: int) -> str:
    """One SIP OPTIONS over a connected UDP socket, as connbot's probe sends it: the status line."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.connect(("127.0.0.1", port))
        sock.send(
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
            b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        return sock.recv(65535).split(b"\r\n", 1)[0].decode()


class App:
    """The scenario's App Management API, every answer checked against the published contract."""

    def __init__(self, lab: Lab, inst: Instance):
        self.base = f"{lab.app_url}/{inst.scenario.name}"
        self.token = inst.keys["app"]
        spec = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
        spec["servers"] = [{"url": self.base}]
        self.api = OpenAPI.from_dict(spec)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = requests.request(
            method, self.base + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=5, **kwargs
        )
        self.api.validate_response(RequestsOpenAPIRequest(resp.request), RequestsOpenAPIResponse(resp))
        return resp

    def network_test(self, device: str) -> dict[str, Any]:
        started = self("POST", f"/v1/devices/{device}/actions/network-test", json={})
        assert started.status_code == 202
        for _ in range(100):
            action = self("GET", f"/v1/actions/{started.json()['action_id']}").json()
            if action["status"] != "running":
                assert action["status"] == "succeeded"
                return dict(action["result"])
            time.sleep(0.02)
        raise AssertionError("the network test did not end")


def test_stopped_asterisk_refuses_ari_and_sip(lab: Lab) -> None:
    inst = lab.instances["asterisk_stopped"]
    with pytest.raises(requests.ConnectionError, match=r"[Rr]efused"):
        ari(inst, "GET", "asterisk/ping")
    with pytest.raises(ConnectionRefusedError):
        options(inst.pbx.sip_port)
    assert inst.last_error == {
        "sip_code": 503,
        "reason": "Connection refused",
        "local_error": "connection_refused",
    }


def test_without_res_pjsip_ari_answers_and_sip_refuses(lab: Lab) -> None:
    inst = lab.instances["sip_stack_down"]
    assert ari(inst, "GET", "asterisk/ping").json()["ping"] == "pong"
    module = ari(inst, "GET", "asterisk/modules/res_pjsip.so").json()
    assert (module["name"], module["status"]) == ("res_pjsip.so", "Not Running")
    with pytest.raises(ConnectionRefusedError):
        options(inst.pbx.sip_port)


def test_a_realtime_database_outage_makes_lookups_slow_and_404_and_writes_403(lab: Lab) -> None:
    inst = lab.instances["realtime_db_down"]
    started = time.monotonic()
    resp = ari(inst, "GET", "asterisk/config/dynamic/res_pjsip/endpoint/2012")
    assert time.monotonic() - started >= DB_WAIT
    assert (resp.status_code, resp.json()) == (404, {"message": "Object with id '2012' not found"})
    resp = ari(
        inst,
        "PUT",
        "asterisk/config/dynamic/res_pjsip/auth/2012",
        json={"fields": [{"attribute": "password", "value": "x"}]},
    )
    assert (resp.status_code, resp.json()) == (
        403,
        {"message": "Cannot create sorcery objects of type 'auth'"},
    )
    assert ari(inst, "GET", "asterisk/modules/res_config_pgsql.so").json()["status"] == "Not Running"
    assert (
        ari(inst, "GET", "asterisk/ping").status_code == 200
        and options(inst.pbx.sip_port) == "SIP/2.0 200 OK"
    )
    assert inst.last_error and inst.last_error["sip_code"] == 401  # Asterisk challenges a user it cannot find


def test_a_user_side_firewall_fails_the_device_test_while_the_pbx_answers_connbot(lab: Lab) -> None:
    inst = lab.instances["user_network_blocked"]
    assert options(inst.pbx.sip_port) == "SIP/2.0 200 OK"
    app = App(lab, inst)
    device = app("GET", "/v1/users/2013/devices").json()["devices"][0]["device_id"]
    assert app("GET", f"/v1/devices/{device}/capabilities").json()["network_test"] is True
    result = app.network_test(device)
    assert result["sip_options"] == {
        "transport": "udp",
        "status_line": None,
        "error": "timeout",
        "rtt_ms": None,
        "loss_pct": 100,
    }


def test_the_device_test_sees_what_the_device_would_see(lab: Lab) -> None:
    """Without a firewall the device's own probe answers as connbot's does: 200 from a healthy PBX,
    refused from a stopped Asterisk."""
    healthy, stopped = lab.instances["password_mismatch"], lab.instances["asterisk_stopped"]
    assert App(lab, healthy).network_test("lab-2004")["sip_options"]["status_line"] == "SIP/2.0 200 OK"
    sip = App(lab, stopped).network_test("lab-2010")["sip_options"]
    assert (sip["status_line"], sip["error"]) == (None, "connection_refused")


def test_an_endpoint_can_name_an_auth_object_that_does_not_exist(lab: Lab) -> None:
    inst = lab.instances["missing_auth_object"]
    endpoint = {
        t["attribute"]: t["value"]
        for t in ari(inst, "GET", "asterisk/config/dynamic/res_pjsip/endpoint/2014").json()
    }
    assert (endpoint["auth"], endpoint["aors"]) == ("2014", "2014")
    resp = ari(inst, "GET", "asterisk/config/dynamic/res_pjsip/auth/2014")
    assert (resp.status_code, resp.json()) == (404, {"message": "Object with id '2014' not found"})
    assert ari(inst, "GET", "asterisk/config/dynamic/res_pjsip/aor/2014").status_code == 200


def test_an_extension_nobody_has_is_unknown_to_the_app_backend_and_the_pbx(lab: Lab) -> None:
    inst = lab.instances["unknown_extension"]
    app = App(lab, inst)
    assert app("GET", "/v1/users/2105/devices").json() == {"devices": []}
    assert ari(inst, "GET", "asterisk/config/dynamic/res_pjsip/endpoint/2105").status_code == 404
    assert len(app("GET", "/v1/users/2015/devices").json()["devices"]) == 1  # the user the ticket meant
    assert ari(inst, "GET", "asterisk/config/dynamic/res_pjsip/endpoint/2015").status_code == 200


def test_reset_restores_every_scenario_on_the_same_ports(tmp_path: Path) -> None:
    with Lab(tmp_path, reconnect_seconds=0.05, db_wait=DB_WAIT) as lab:
        inst = lab.instances["password_mismatch"]
        ports = (inst.pbx.ari.port, inst.pbx.sip_port)
        pbx_password = inst.objects["auth"]["2004"]["password"]
        resp = ari(
            inst,
            "PUT",
            "asterisk/config/dynamic/res_pjsip/auth/2004",
            json={"fields": [{"attribute": "password", "value": inst.app_password}]},
        )
        assert resp.status_code == 200
        inst.pbx.stop()

        lab.reset()

        again = lab.instances["password_mismatch"]
        assert (again.pbx.ari.port, again.pbx.sip_port) == ports
        assert again.objects["auth"]["2004"]["password"] == pbx_password != again.app_password
        assert ari(again, "GET", "asterisk/ping").status_code == 200 and options(again.pbx.sip_port)
        with pytest.raises(requests.ConnectionError):  # a stopped Asterisk is stopped again
            ari(lab.instances["asterisk_stopped"], "GET", "asterisk/ping")

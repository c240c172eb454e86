"""Fakes of the outside systems at the wire (ARI, the App Management API) and fixture loading.

`FakeAri` answers like Asterisk's ARI (shapes of the official api-docs, `{"message"}` errors);
`FakeApp` answers like a backend of docs/app-management-api.yaml, and every request connbot sent
to it and every answer it gave are validated against that contract when the test ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import responses
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from pydantic import SecretStr

from integrations import http
from simulators import ari
from tests.fakes.wire import mount

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
CONTRACT = ROOT / "docs" / "app-management-api.yaml"
ARI = "http://pbx.test:8088"
APP = "http://app.test"
FAST = http.RetryPolicy(
    attempts=2,
    total=1.0,
    backoff=0.0,
    max_backoff=0.0,
    connect_timeout=0.5,
    read_timeout=0.5,
    sleep=lambda s: None,
)


def fixture(system: str, filename: str, **subst: str) -> Any:
    """A fixture file from tests/fixtures/<system>/, with `__KEY__` placeholders replaced."""
    text = (FIXTURES / system / filename).read_text(encoding="utf-8")
    for key, value in subst.items():
        text = text.replace(f"__{key.upper()}__", value)
    return json.loads(text) if filename.endswith(".json") else text


def tuples_to_dict(tuples: list[dict[str, str]]) -> dict[str, str]:
    return {t["attribute"]: t["value"] for t in tuples}


class FakeAri:
    """The ARI simulator (simulators/ari.py) mounted at `url`: a PBX with user 1001's PJSIP objects
    in a writable (or read-only) sorcery backend. `down` refuses connections; `broken` (a path
    substring mapped to an answer or an exception) injects faults beyond the simulator's own."""

    def __init__(
        self,
        rsps: responses.RequestsMock,
        password: str = "s3cret-pw",
        ari_password: str = "ari-pw",
        url: str = ARI,
    ):
        self.asterisk = ari.Asterisk(
            ari_password=ari_password,
            objects={
                "endpoint": {"1001": tuples_to_dict(fixture("pbx", "endpoint_1001.json"))},
                "auth": {"1001": tuples_to_dict(fixture("pbx", "auth_1001.json", password=password))},
                "aor": {"1001": tuples_to_dict(fixture("pbx", "aor_1001.json"))},
            },
            modules={m: "Running" for m in ari.SIP_STACK},
        )
        self.down = False
        self.broken: dict[str, Any] = {}
        mount(rsps, url, ari.create(self.asterisk), refused=lambda: self.down, faults=self.broken)

    @property
    def objects(self) -> dict[str, dict[str, dict[str, str]]]:
        return self.asterisk.objects

    @objects.setter
    def objects(self, value: dict[str, dict[str, dict[str, str]]]) -> None:
        self.asterisk.objects = value

    @property
    def modules(self) -> dict[str, str]:
        return self.asterisk.modules

    @property
    def puts(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every object written, in order: (object type, id, fields)."""
        return self.asterisk.writes

    @property
    def read_only_user(self) -> bool:
        return self.asterisk.read_only_user

    @read_only_user.setter
    def read_only_user(self, value: bool) -> None:
        self.asterisk.read_only_user = value

    @property
    def read_only_backend(self) -> bool:
        return not self.asterisk.writable

    @read_only_backend.setter
    def read_only_backend(self, value: bool) -> None:
        self.asterisk.writable = not value

    @property
    def reject_fields(self) -> set[str]:
        return self.asterisk.invalid

    @reject_fields.setter
    def reject_fields(self, value: set[str]) -> None:
        self.asterisk.invalid = value

    @property
    def lookup_delay(self) -> float:
        """Seconds each configuration look-up or write takes (a realtime database in trouble)."""
        return self.asterisk.lookup_seconds

    @lookup_delay.setter
    def lookup_delay(self, value: float) -> None:
        self.asterisk.lookup_seconds = value


REGISTERED = {"status": "succeeded", "result": {"registration_state": "registered", "sip_code": 200}}


class FakeApp:
    """An App Management API v1 backend with one device of user 1001."""

    def __init__(self, rsps: responses.RequestsMock, url: str = APP, token: str = "app-token"):
        self.rsps = rsps
        self.url, self.token = url, token
        self.devices = fixture("app", "devices.json")
        self.capabilities = fixture("app", "capabilities.json")
        self.status = fixture("app", "status_failed.json")
        self.config = fixture("app", "config.json")
        self.offline = False
        self.forbid_patch = False
        self.app_password: str | None = None
        # how the next reconnect ends: a list of statuses returned by successive polls
        self.action_script: list[dict[str, Any]] = [REGISTERED]
        self.actions: dict[str, list[dict[str, Any]]] = {}
        # once this holds (e.g. the config was fixed), reconnects succeed
        self.heal_when: Callable[[], bool] = lambda: False
        self.log_pages: list[list[str]] = []
        # what the device's own network test measures (the contract's network-test result)
        self.network_result: dict[str, Any] = {
            "dns": {"host": "pbx.example.com", "a": ["203.0.113.10"], "srv": [], "error": None},
            "tcp": [{"port": 5060, "ok": True, "connect_ms": 23.1, "error": None}],
            "tls": None,
            "sip_options": {
                "transport": "udp",
                "status_line": "SIP/2.0 401 Unauthorized",
                "rtt_ms": {"min": 20.1, "avg": 24.0, "max": 31.2},
                "jitter_ms": 2.3,
                "loss_pct": 0,
            },
        }
        self.patches: list[dict[str, Any]] = []
        self.users = [{"user_ref": "1001", "email": "jane@example.com", "display_name": "Jane"}]
        for method in (responses.GET, responses.POST, responses.PATCH):
            rsps.add_callback(method, re.compile(re.escape(url) + r"/v1/.*"), callback=self._handle)

    @staticmethod
    def _err(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
        return (
            status,
            {"Content-Type": "application/json"},
            json.dumps({"error": {"code": code, "message": message, "retryable": status >= 500}}),
        )

    @staticmethod
    def _ok(body: Any, status: int = 200) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    def _start(self) -> dict[str, Any]:
        aid = f"act-{len(self.actions) + 1}"
        self.actions[aid] = [REGISTERED] if self.heal_when() else list(self.action_script)
        return {"action_id": aid, "status": "accepted", "poll": f"/v1/actions/{aid}"}

    def _handle(self, req: requests.PreparedRequest) -> Any:
        if req.headers.get("Authorization") != f"Bearer {self.token}":
            return self._err(401, "unauthorized", "bad token")
        path = req.path_url.split("?")[0].removeprefix("/v1")
        if path == "/users":
            email = dict(p.split("=", 1) for p in req.path_url.split("?", 1)[1].split("&")).get("email", "")
            return self._ok({"users": [u for u in self.users if u["email"] == email.replace("%40", "@")]})
        if path.startswith("/users/"):
            user = path.split("/")[2]
            return self._ok(self.devices if user == "1001" else {"devices": []})
        if path.startswith("/actions/"):
            script = self.actions.get(path.split("/")[2])
            if script is None:
                return self._err(404, "device_not_found", "no such action")
            step = script.pop(0) if len(script) > 1 else script[0]
            kind = "network-test" if "network_test" in step else "reconnect"
            body = {"status": "succeeded", "result": step["network_test"]} if kind == "network-test" else step
            return self._ok({"action_id": path.split("/")[2], "type": kind, **body})
        m = re.fullmatch(
            r"/devices/([^/]+)/(capabilities|status|config|logs|actions/reconnect|actions/network-test)", path
        )
        if not m or m.group(1) != "dsk-7f3a":
            return self._err(404, "device_not_found", "no such device")
        what = m.group(2)
        if what == "capabilities":
            return self._ok(self.capabilities)
        if self.offline and what != "config":
            return self._err(503, "device_offline", "the app is not connected")
        if what == "status":
            return self._ok(self.status)
        if what == "actions/network-test":
            if not self.capabilities.get("network_test"):
                return self._err(501, "unsupported", "cannot test the network")
            aid = f"act-{len(self.actions) + 1}"
            self.actions[aid] = [{"network_test": self.network_result}]
            return self._ok({"action_id": aid, "status": "accepted", "poll": f"/v1/actions/{aid}"}, 202)
        if what == "actions/reconnect":
            if not self.capabilities.get("reconnect"):
                return self._err(501, "unsupported", "cannot reconnect")
            return self._ok(self._start(), 202)
        if what == "logs":
            cursor = int(
                dict(p.split("=") for p in ([*req.path_url.split("?", 1), ""])[1].split("&") if "=" in p).get(
                    "cursor", 0
                )
            )
            page = self.log_pages[cursor] if cursor < len(self.log_pages) else []
            nxt = str(cursor + 1) if cursor + 1 < len(self.log_pages) else None
            return self._ok(
                {
                    "entries": [
                        {"ts": "2026-08-06T09:58:10.120Z", "level": "info", "message": line, "raw": line}
                        for line in page
                    ],
                    "next_cursor": nxt,
                    "truncated": False,
                    "source": "app_log",
                }
            )
        if req.method == "PATCH":
            if self.forbid_patch:
                return self._err(403, "forbidden", "configuration is managed by provisioning")
            body = json.loads(req.body or b"{}")
            self.patches.append(body)
            account = self.config["accounts"][0]
            if "server" in body:
                account["server"] = body["server"]
            if "password" in body:
                self.app_password = body["password"]
            answer = dict(self.config)
            if body.get("reregister"):
                answer["action_id"] = self._start()["action_id"]
            return self._ok(answer)
        return self._ok(self.config)

    def validate(self) -> None:
        """Every exchange with the backend conforms to the published contract."""
        spec = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
        spec["servers"] = [{"url": self.url}]  # the published spec names an example host
        api = OpenAPI.from_dict(spec)
        for call in self.rsps.calls:
            if not call.request.url.startswith(self.url):
                continue
            request = RequestsOpenAPIRequest(call.request)
            api.validate_request(request)
            if isinstance(call.response, requests.Response):
                api.validate_response(request, RequestsOpenAPIResponse(call.response))


def secret(value: str) -> SecretStr:
    return SecretStr(value)


def app_settings(**over: Any) -> Any:
    from integrations.app.settings import AppSettings

    values = {
        "app_api_url": APP,
        "app_api_token": SecretStr("app-token"),
        "app_reconnect_deadline": 0.5,
        "app_poll_interval": 0.01,
        **over,
    }
    return AppSettings.model_validate(values)


def sip_settings(**over: Any) -> Any:
    from integrations.pbx.settings import SipSettings

    return SipSettings.model_validate(
        {"sip_host": "127.0.0.1", "sip_port": 5060, "sip_transport": "udp", **over}
    )


def pbx_adapter(*, ari_password: str = "ari-pw", with_app: bool = True, **over: Any) -> Any:
    from integrations.pbx.adapter import PbxAdapter
    from integrations.pbx.settings import PbxSettings

    settings = PbxSettings.model_validate(
        {"ari_url": ARI, "ari_username": "connbot", "ari_password": SecretStr(ari_password), **over}
    )
    return PbxAdapter.from_settings(settings, app_settings() if with_app else None, policy=FAST)


def app_adapter(**sip: Any) -> Any:
    from integrations.app.adapter import AppAdapter

    return AppAdapter.from_settings(app_settings(), sip_settings(**sip), policy=FAST)


def inp(user: str | None = "1001", **facts: Any) -> Any:
    from integrations.base import ActionInput

    return ActionInput(ticket_key="VOIP-1", user=user, facts=facts)

"""The outside systems at the wire (ARI, the App Management API) and fixture loading.

Both are the simulators of `simulators/` mounted on `responses`: `FakeAri` is ARI's with user
1001's PJSIP objects; `app_backend` is the App Management API's with user 1001's app, and
`check_contract` validates every request connbot sent to it and every answer it gave against
docs/app-management-api.yaml (the `app_api` fixture does so when the test ends).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
import responses
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from pydantic import SecretStr

from integrations import http
from simulators import app_api, ari
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


USER, DEVICE = "1001", "dsk-7f3a"
STALE_PASSWORD = "old-pw"  # the app's SIP password before anyone fixed it: not the PBX's "s3cret-pw"
UNAUTHORIZED = {"sip_code": 401, "reason": "Unauthorized", "local_error": None}


def app_backend(rsps: responses.RequestsMock, url: str = APP, token: str = "app-token") -> app_api.Backend:
    """The App Management API simulator (simulators/app_api.py) mounted at `url`: user 1001
    (jane@example.com) with one desktop app, registering with 127.0.0.1:5060 over UDP, whose last
    registration failed with 401 (its password is not the PBX's) and whose next reconnect succeeds.
    Actions end at their first poll."""
    device = app_api.Device(
        user=USER,
        device_id=DEVICE,
        app="AcmePhone",
        server={"host": "127.0.0.1", "port": 5060, "transport": "udp"},
        password=STALE_PASSWORD,
        last_error=dict(UNAUTHORIZED),
    )
    backend = app_api.Backend(
        token=token,
        devices=[device],
        users=[{"user_ref": USER, "email": "jane@example.com", "display_name": "Jane"}],
        action_seconds=0.0,
    )
    mount(rsps, url, app_api.create(backend))
    return backend


def check_contract(rsps: responses.RequestsMock, url: str = APP) -> None:
    """Every exchange with the app backend at `url` conforms to the published contract."""
    spec = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    spec["servers"] = [{"url": url}]  # the published spec names an example host
    api = OpenAPI.from_dict(spec)
    for call in rsps.calls:
        if not call.request.url.startswith(url):
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

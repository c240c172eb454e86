"""app.* against an App Management API backend faked at the wire; every exchange is checked against
docs/app-management-api.yaml by the `app_api` fixture."""

from __future__ import annotations

import re

import pytest
import requests
import responses
from openapi_core.exceptions import OpenAPIError
from wire_fakes import app_adapter, check_contract, inp

from integrations.base import NotConfiguredError, PermanentError, TransientError, UnsupportedError
from simulators.app_api import Backend, Device

REGISTRATION_TIMEOUT = {"sip_code": 408, "reason": "Request Timeout", "local_error": "timeout"}


def test_find_user_by_the_reporters_email(app_api: Backend) -> None:
    res = app_adapter().find_user(inp(user=None).model_copy(update={"reporter_email": "jane@example.com"}))
    assert (
        res.outcome == "found"
        and res.facts["user"] == "1001"
        and "jane@example.com as user 1001" in res.summary
    )


def test_find_user_unknown_or_ambiguous_email(app_api: Backend) -> None:
    assert (
        app_adapter().find_user(inp(user=None).model_copy(update={"reporter_email": "x@example.com"})).outcome
        == "not_found"
    )
    app_api.users.append({"user_ref": "1002", "email": "jane@example.com"})
    res = app_adapter().find_user(inp(user=None).model_copy(update={"reporter_email": "jane@example.com"}))
    assert res.outcome == "not_found" and "knows 2 users" in res.summary and "user" not in res.facts


def test_get_status_finds_the_device_and_reports_the_failure(phone: Device) -> None:
    res = app_adapter().get_status(inp())
    assert res.outcome == "failed" and res.facts["device_id"] == "dsk-7f3a"
    assert "401 Unauthorized" in res.summary and res.evidence["registrar"]["port"] == 5060


@pytest.mark.parametrize(
    "state, said",
    [
        ("registered", "is registered with 127.0.0.1:5060/udp."),
        ("registering", "is registering with 127.0.0.1:5060/udp; last error: {error}."),
        ("unregistered", "is not registered with 127.0.0.1:5060/udp; last error: {error}."),
        ("failed", "failed to register with 127.0.0.1:5060/udp; last error: {error}."),
        ("unknown", "does not say whether it is registered with 127.0.0.1:5060/udp; last error: {error}."),
    ],
)
def test_get_status_says_each_state_in_words(phone: Device, state: str, said: str) -> None:
    phone.state = state
    res = app_adapter().get_status(inp())
    error = "reg: sip:1001@pbx.example.com: 401 Unauthorized"
    assert res.outcome == state and res.evidence["state"] == state
    assert res.summary == "The app on device dsk-7f3a " + said.format(error=error)


def test_get_status_device_offline(phone: Device) -> None:
    phone.online = False
    res = app_adapter().get_status(inp())
    assert res.outcome == "device_offline" and res.facts["device_id"] == "dsk-7f3a"


def test_get_status_user_without_device_is_an_error(app_api: Backend) -> None:
    with pytest.raises(PermanentError, match="no device"):
        app_adapter().get_status(inp(user="2002"))


def test_reconnect_succeeds_after_polling(app_api: Backend, rsps: responses.RequestsMock) -> None:
    app_api.action_seconds = 0.05
    res = app_adapter().reconnect(inp())
    assert res.outcome == "reconnected" and res.evidence["action_status"] == "succeeded"
    assert len([c for c in rsps.calls if "/v1/actions/" in c.request.url]) > 1


def test_reconnect_still_failing_says_why(phone: Device) -> None:
    phone.failure = lambda device: {"sip_code": 401, "reason": "Unauthorized", "local_error": None}
    res = app_adapter().reconnect(inp())
    assert res.outcome == "still_failing" and "Unauthorized" in res.summary and "401" in res.summary
    assert res.summary.startswith("connbot made the app reconnect; it still fails to register: ")


def test_reconnect_times_out_at_our_deadline(app_api: Backend) -> None:
    app_api.action_seconds = 60
    res = app_adapter().reconnect(inp())
    assert res.outcome == "timeout" and res.evidence["action_status"] == "deadline"


def test_reconnect_device_timeout(phone: Device) -> None:
    phone.unresponsive = True
    assert app_adapter().reconnect(inp()).outcome == "timeout"


def test_reconnect_device_offline(phone: Device) -> None:
    phone.online = False
    assert app_adapter().reconnect(inp()).outcome == "device_offline"


def test_reconnect_unsupported_becomes_a_human_step(phone: Device) -> None:
    phone.capabilities["reconnect"] = False
    with pytest.raises(UnsupportedError, match="reconnect"):
        app_adapter().reconnect(inp())


def test_get_last_error_found_puts_the_message_in_facts(app_api: Backend) -> None:
    res = app_adapter().get_last_error(inp())
    assert (
        res.outcome == "found"
        and res.facts["error_message"] == "reg: sip:1001@pbx.example.com: 401 Unauthorized"
    )


def test_get_last_error_none(phone: Device) -> None:
    phone.last_error = None
    assert app_adapter().get_last_error(inp()).outcome == "none"


def test_check_config_ok(app_api: Backend) -> None:
    res = app_adapter().check_config(inp())
    assert res.outcome == "ok" and res.evidence["differences"] == {}


@pytest.mark.parametrize(
    "change, expected, outcome",
    [
        ({"server": {"host": "127.0.0.2", "port": 5060, "transport": "udp"}}, {}, "wrong_host"),
        ({"server": {"host": "127.0.0.1", "port": 5080, "transport": "udp"}}, {}, "wrong_port"),
        ({"server": {"host": "127.0.0.1", "port": 5060, "transport": "tcp"}}, {}, "wrong_transport"),
        ({"auth_username": "1002"}, {}, "wrong_username"),
        ({}, {"sip_domain": "voip.example.org"}, "wrong_domain"),
        (
            {"server": {"host": "pbx.nowhere.invalid", "port": 5060, "transport": "udp"}},
            {},
            "unresolvable_host",
        ),
    ],
)
def test_check_config_finds_each_wrong_setting(
    phone: Device, change: dict, expected: dict, outcome: str
) -> None:
    for name, value in change.items():
        setattr(phone, name, value)
    res = app_adapter(**expected).check_config(inp())
    assert res.outcome == outcome


def test_check_config_wrong_port_names_both_values(phone: Device) -> None:
    phone.server["port"] = 5080
    res = app_adapter().check_config(inp())
    assert "5080" in res.summary and "5060" in res.summary


def test_check_config_needs_the_expected_host(app_api: Backend) -> None:
    with pytest.raises(NotConfiguredError, match="CONNBOT_SIP_HOST"):
        app_adapter(sip_host="").check_config(inp())


def test_fix_config_patches_the_server_and_the_app_connects(phone: Device) -> None:
    phone.server["port"] = 5080
    phone.failure = lambda device: None if device.server["port"] == 5060 else REGISTRATION_TIMEOUT
    res = app_adapter().fix_config(inp())
    assert res.outcome == "fixed_connected"
    assert res.summary == "Fixed the app's configuration (port 5060); it registers now."
    assert phone.patches == [
        {
            "account_id": "acc-1",
            "reregister": True,
            "server": {"host": "127.0.0.1", "port": 5060, "transport": "udp"},
        }
    ]
    assert app_adapter().check_config(inp()).outcome == "ok"


def test_fix_config_still_failing(phone: Device) -> None:
    phone.server["port"] = 5080
    phone.failure = lambda device: REGISTRATION_TIMEOUT
    assert app_adapter().fix_config(inp()).outcome == "fixed_still_failing"


def test_fix_config_forbidden(phone: Device) -> None:
    phone.server["port"] = 5080
    phone.managed = True
    assert app_adapter().fix_config(inp()).outcome == "forbidden"


def test_fix_config_unsupported_field(phone: Device) -> None:
    phone.auth_username = "1002"
    with pytest.raises(UnsupportedError, match="username"):
        app_adapter().fix_config(inp())
    assert phone.patches == []


@pytest.mark.parametrize(
    "status, body, error",
    [
        (500, '{"error":{"code":"internal","message":"boom"}}', TransientError),
        (200, "{not json", PermanentError),
    ],
)
def test_backend_errors_are_translated(
    rsps: responses.RequestsMock, status: int, body: str, error: type
) -> None:
    rsps.add(responses.GET, re.compile(r"http://app\.test/v1/.*"), status=status, body=body)
    with pytest.raises(error, match=r"HTTP 500|malformed JSON"):
        app_adapter().get_status(inp())


def test_the_contract_check_catches_an_answer_off_contract(
    phone: Device, rsps: responses.RequestsMock
) -> None:
    phone.state = "connected"
    assert app_adapter().get_status(inp()).outcome == "unknown"
    with pytest.raises(OpenAPIError):
        check_contract(rsps)
    rsps.calls.reset()


def test_a_backend_that_does_not_answer_is_a_transient_error(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.GET,
        re.compile(r"http://app\.test/v1/.*"),
        body=requests.ConnectTimeout("connect timed out"),
    )
    with pytest.raises(TransientError, match=r"cannot reach .*ConnectTimeout"):
        app_adapter().get_status(inp())

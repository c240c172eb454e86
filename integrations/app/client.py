"""Client of the App Management API v1 (docs/app-management-api.yaml); its errors are translated here.

The contract's error body is `{"error": {"code", "message", "retryable"}}`. 503 `device_offline`
means the app is not connected to its management channel; 501 `unsupported` that the device
cannot do the action. Asynchronous actions are polled with `wait` until they end or a deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from pydantic import SecretStr

from integrations import http
from integrations.base import AdapterError, PermanentError, TransientError, UnsupportedError

FINAL = frozenset({"succeeded", "failed", "timeout"})


class DeviceOfflineError(TransientError):
    """503: the app is not connected to its backend's management channel."""


class DeviceNotFoundError(PermanentError):
    """404: no such device, or the user has none."""


class AppForbiddenError(PermanentError):
    """403 (or 401): connbot may not do this on the device."""


@dataclass(frozen=True)
class ActionEnd:
    """How an asynchronous action ended.

    `succeeded`, `failed`, `timeout` (the device's) or `deadline` (ours).
    """

    action_id: str
    status: str
    result: dict[str, Any]
    error: dict[str, Any]
    waited_s: float

    @property
    def registered(self) -> bool:
        return (
            self.status == "succeeded" and self.result.get("registration_state", "registered") == "registered"
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "action_status": self.status,
            "waited_s": round(self.waited_s, 2),
            "result": self.result,
            "error": self.error,
        }


class AppClient:
    """One backend of the App Management API v1, with a Bearer token."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        policy: http.RetryPolicy,
        deadline: float = 40.0,
        poll_interval: float = 2.0,
        log_pages: int = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base = base_url.rstrip("/") + "/v1"
        self.policy = policy
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.log_pages = log_pages
        self._clock = clock
        self._sleep = sleep
        self._session = http.session(headers={"Authorization": f"Bearer {token.get_secret_value()}"})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        where = f"app API {method} {path.split('?')[0]}"
        try:
            resp = http.request(
                self._session, method, self.base + path, self.policy, service="the app API", **kwargs
            )
        except http.Exhausted as exc:
            # Only the contract's own 503 says the app is offline; a proxy's 503 is the backend being down.
            if exc.status == 503 and _code(exc.body) == "device_offline":
                raise DeviceOfflineError(
                    f"{where}: 503 the app is offline (not connected to its backend)", 503
                ) from None
            raise
        if resp.status_code < 400:
            return _json(resp, where)
        code, message = _error(resp)
        text = f"{where}: {resp.status_code} {code or ''} {message}".rstrip()
        if resp.status_code == 404:
            raise DeviceNotFoundError(text, 404)
        if resp.status_code in (401, 403):
            raise AppForbiddenError(text, resp.status_code)
        if resp.status_code == 501:
            raise UnsupportedError(text, 501)
        http.raise_for_status(resp, "the app API")
        raise AdapterError(text, resp.status_code)  # pragma: no cover - raise_for_status raised

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        users = _obj(self._call("GET", "/users", params={"email": email}), "users").get("users")
        if not isinstance(users, list):
            raise PermanentError("app API users: no `users` list in the answer")
        return [u for u in users if isinstance(u, dict) and u.get("user_ref")]

    def devices(self, user: str) -> list[dict[str, Any]]:
        data = _obj(self._call("GET", f"/users/{quote(user, safe='')}/devices"), "devices")
        devices = data.get("devices")
        if not isinstance(devices, list):
            raise PermanentError("app API devices: no `devices` list in the answer")
        return devices

    def capabilities(self, device_id: str) -> dict[str, Any]:
        return _obj(self._call("GET", f"/devices/{quote(device_id)}/capabilities"), "capabilities")

    def status(self, device_id: str) -> dict[str, Any]:
        return _obj(self._call("GET", f"/devices/{quote(device_id)}/status"), "status")

    def config(self, device_id: str) -> dict[str, Any]:
        return _obj(self._call("GET", f"/devices/{quote(device_id)}/config"), "config")

    def patch_config(self, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
        # PATCH is not idempotent for the retry policy: with reregister it starts an action.
        return _obj(
            self._call("PATCH", f"/devices/{quote(device_id)}/config", json=body, idempotent=False), "config"
        )

    def start_action(self, device_id: str, kind: str, body: dict[str, Any]) -> str:
        """Start an asynchronous action (`reconnect`, `network-test`); its id."""
        data = _obj(self._call("POST", f"/devices/{quote(device_id)}/actions/{kind}", json=body), kind)
        if not data.get("action_id"):
            raise PermanentError(f"app API {kind}: no action_id in the answer")
        return str(data["action_id"])

    def start_reconnect(self, device_id: str, account_id: str | None, mode: str = "reregister") -> str:
        body: dict[str, Any] = {"mode": mode}
        if account_id:
            body["account_id"] = account_id
        return self.start_action(device_id, "reconnect", body)

    def action(self, action_id: str) -> dict[str, Any]:
        return _obj(self._call("GET", f"/actions/{quote(action_id)}"), "action")

    def wait(self, action_id: str) -> ActionEnd:
        """Poll an action until it ends or `deadline` seconds pass (then status `deadline`)."""
        start = self._clock()
        while True:
            data = self.action(action_id)
            status = str(data.get("status", ""))
            waited = self._clock() - start
            if status in FINAL:
                return ActionEnd(
                    action_id, status, _dict(data.get("result")), _dict(data.get("error")), waited
                )
            if waited + self.poll_interval > self.deadline:
                return ActionEnd(action_id, "deadline", {}, {}, waited)
            self._sleep(self.poll_interval)

    def logs(self, device_id: str) -> Iterator[dict[str, Any]]:
        """Log entries of the device, following cursors for at most `log_pages` pages."""
        cursor: str | None = None
        for _ in range(self.log_pages):
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            data = _obj(self._call("GET", f"/devices/{quote(device_id)}/logs", params=params), "logs")
            entries = data.get("entries")
            if not isinstance(entries, list):
                raise PermanentError("app API logs: no `entries` list in the answer")
            yield from (e for e in entries if isinstance(e, dict))
            cursor = data.get("next_cursor")
            if not cursor:
                return

    # -- helpers shared by the adapters that use the app
    def require(self, device_id: str, capability: str, what: str) -> dict[str, Any]:
        """The device's capabilities; `UnsupportedError` when `capability` is off."""
        caps = self.capabilities(device_id)
        if not caps.get(capability):
            raise UnsupportedError(
                f"device {device_id} cannot {what} through its backend (capability {capability!r} is off)"
            )
        return caps

    def reconnect(self, device_id: str, account_id: str | None) -> ActionEnd | None:
        """Make the app re-register and wait for the end; None when the app is offline."""
        self.require(device_id, "reconnect", "reconnect")
        try:
            return self.wait(self.start_reconnect(device_id, account_id))
        except DeviceOfflineError:
            return None

    def network_test(self, device_id: str, account_id: str | None) -> ActionEnd | None:
        """Run the device's own network test towards its account's server; None when the app is offline."""
        try:
            return self.wait(
                self.start_action(device_id, "network-test", {"account_id": account_id} if account_id else {})
            )
        except DeviceOfflineError:
            return None

    def find_device(self, user: str, known: str | None = None) -> dict[str, Any]:
        """The user's app instance: the one named in facts, else the first online one, else the first."""
        devices = self.devices(user)
        if known:
            for dev in devices:
                if dev.get("device_id") == known:
                    return dev
        if not devices:
            raise DeviceNotFoundError(f"the app backend knows no device of user {user}", 404)
        online = [d for d in devices if d.get("online")]
        return (online or devices)[0]


def pick_account(accounts: Any, user: str | None) -> dict[str, Any]:
    """The account of `user` among a device's accounts (by AOR or SIP username), else the first."""
    if not isinstance(accounts, list) or not accounts:
        raise PermanentError("the app reports no SIP account on the device")
    for acc in accounts:
        if not isinstance(acc, dict) or not user:
            continue
        aor = str(acc.get("aor", ""))
        if user in (acc.get("sip_username"), acc.get("auth_username")) or aor.startswith(
            (f"sip:{user}@", f"sips:{user}@")
        ):
            return acc
    first = accounts[0]
    if not isinstance(first, dict):
        raise PermanentError("the app reports a malformed SIP account")
    return first


def _json(resp: requests.Response, where: str) -> Any:
    if not resp.content:
        return {}
    try:
        return resp.json()
    except ValueError:
        raise PermanentError(f"{where}: malformed JSON in the answer", resp.status_code) from None


def _code(body: str) -> str | None:
    """The contract's error code in an error answer's body, if it has one."""
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return str(err.get("code")) if isinstance(err, dict) and err.get("code") else None


def _error(resp: requests.Response) -> tuple[str | None, str]:
    try:
        err = resp.json().get("error", {})
        code = err.get("code")
        return (None if code is None else str(code)[:64]), str(err.get("message", ""))[:200]
    except (ValueError, AttributeError):
        return None, resp.text[:200].strip()


def _obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PermanentError(f"app API {what}: expected a JSON object, got {type(data).__name__}")
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def from_settings(settings: Any, policy: http.RetryPolicy | None = None) -> AppClient:
    """An `AppClient` from an `AppSettings` section (the token checked to be present)."""
    settings.require_token()
    policy = policy or http.RetryPolicy(read_timeout=settings.app_api_timeout)
    return AppClient(
        settings.app_api_url,
        settings.app_api_token,
        policy=policy,
        deadline=settings.app_reconnect_deadline,
        poll_interval=settings.app_poll_interval,
        log_pages=settings.app_log_pages,
    )

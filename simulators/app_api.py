"""A softphone backend speaking the App Management API v1 (docs/app-management-api.yaml).

The state is a `Backend` holding `Device`s, each one app instance of a user with one SIP account.
Actions are asynchronous and end `action_seconds` after they start:

* `reconnect` (and a config PATCH with `reregister`) ends with whatever the device's `failure`
  decides then, so what was fixed on the PBX or in the app really helps and what was not keeps
  failing;
* `network-test` probes the configured registrar from the device (SIP OPTIONS over UDP, and a TCP
  connect when the account uses TCP or TLS, as in §7 of the design notes): a device behind a
  firewall on the user's side gets no answer at all, a closed port is refused, an open one answers
  with its status line;
* an `unresponsive` app takes the command but never reports back: its reconnect ends `timeout`.

A device whose configuration provisioning owns (`managed`) refuses every PATCH (403 `forbidden`).

Bearer authentication; errors as `{"error": {"code", "message", "retryable"}}`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

CAPABILITIES: dict[str, Any] = {
    "reconnect": True,
    "resync": False,
    "network_test": True,
    "logs": True,
    "collect_logs": False,
    "config_read": True,
    "config_write": ["server", "port", "transport", "password"],
    "credential_fingerprint": ["md5-ha1"],
}
PATCHABLE = {"account_id", "server", "domain", "sip_username", "auth_username", "password", "reregister"}
ACTIONS = {
    "reconnect": "reconnect",
    "network-test": "network_test",
    "resync": "resync",
    "collect-logs": "collect_logs",
}
ACCOUNT = "acc-1"
PROBE_TIMEOUT = 0.5
_ids = itertools.count(1)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ha1(user: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """One SIP OPTIONS over UDP to host:port: the status line, or why there is none."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    started = time.perf_counter()
    try:
        sock.connect((host, port))
        local = sock.getsockname()
        call_id = secrets.token_hex(8)
        sock.send(
            (
                f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{call_id};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{local[0]}>;tag={call_id[:6]}\r\n"
                f"To: <sip:{host}:{port}>\r\n"
                f"Call-ID: {call_id}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        line = sock.recv(65535).split(b"\r\n", 1)[0].decode("utf-8", "replace")
        rtt = round((time.perf_counter() - started) * 1000, 2)
        return {
            "status_line": line,
            "error": None,
            "rtt_ms": {"min": rtt, "avg": rtt, "max": rtt},
            "loss_pct": 0,
        }
    except ConnectionRefusedError:
        return {"status_line": None, "error": "connection_refused", "rtt_ms": None, "loss_pct": 100}
    except TimeoutError:
        return {"status_line": None, "error": "timeout", "rtt_ms": None, "loss_pct": 100}
    finally:
        sock.close()


@dataclass
class Device:
    """One app instance of `user` with one SIP account, registering with `server`."""

    user: str
    server: dict[str, Any]  # host, port, transport
    password: str
    auth_username: str = ""  # the digest username (default: `user`)
    domain: str = "pbx.example.com"
    realm: str = "asterisk"
    device_id: str = ""
    app: str = "LabPhone"
    capabilities: dict[str, Any] = field(default_factory=lambda: dict(CAPABILITIES))
    online: bool = True  # the app is connected to its management channel
    blocked: bool = False  # a firewall on the user's side drops the device's packets to the PBX
    last_error: dict[str, Any] | None = None  # why the last registration failed (None: registered)
    state: str = ""  # the registration state the app reports ("": failed or registered, by last_error)
    managed: bool = False  # provisioning owns the configuration: every PATCH is 403
    unresponsive: bool = False  # takes commands, never reports back: actions end in timeout
    log: list[str] = field(default_factory=list)
    failure: Callable[[Device], dict[str, Any] | None] = lambda device: None  # why it cannot register now
    patches: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.device_id = self.device_id or f"dev-{self.user}"
        self.auth_username = self.auth_username or self.user

    @property
    def fingerprint(self) -> dict[str, str] | None:
        """The password's MD5-HA1 fingerprint, where the app offers one."""
        if "md5-ha1" not in self.capabilities.get("credential_fingerprint", []):
            return None
        return {
            "algorithm": "md5-ha1",
            "realm": self.realm,
            "value": ha1(self.auth_username, self.realm, self.password),
        }

    def describe(self, err: dict[str, Any]) -> str:
        """A registration failure as the app's log line says it."""
        why = f"{err['sip_code']} {err['reason']}" if err.get("sip_code") else str(err.get("local_error"))
        return f"reg: sip:{self.user}@{self.domain}: {why.replace('_', ' ')}"

    def network_test(self) -> dict[str, Any]:
        """What the device's own probes of its registrar find (design notes §6.2, §7)."""
        host, port = str(self.server["host"]), int(self.server["port"])
        sip = (
            {"status_line": None, "error": "timeout", "rtt_ms": None, "loss_pct": 100}
            if self.blocked
            else probe(host, port)
        )
        tcp = [] if self.server["transport"] == "udp" else [self._connect(host, port)]
        return {
            "dns": {"host": host, "a": [host], "srv": [], "error": None},
            "tcp": tcp,
            "tls": None,
            "sip_options": {"transport": self.server["transport"], **sip},
        }

    def _connect(self, host: str, port: int) -> dict[str, Any]:
        """One TCP connect to the registrar, timed."""
        if self.blocked:
            return {"port": port, "ok": False, "connect_ms": None, "error": "timeout"}
        started = time.perf_counter()
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
        except ConnectionRefusedError:
            return {"port": port, "ok": False, "connect_ms": None, "error": "connection_refused"}
        except OSError:
            return {"port": port, "ok": False, "connect_ms": None, "error": "timeout"}
        ms = round((time.perf_counter() - started) * 1000, 2)
        return {"port": port, "ok": True, "connect_ms": ms, "error": None}


@dataclass
class Backend:
    """The devices one App Management API serves, and its actions (changed under `lock`)."""

    token: str
    devices: list[Device] = field(default_factory=list)
    users: list[dict[str, str]] = field(default_factory=list)  # user_ref, email, display_name
    action_seconds: float = 1.0
    log_page: int = 1000  # the most log entries one page holds, whatever limit was asked
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.device_id == device_id), None)

    def start(self, device: Device, kind: str) -> str:
        action_id = f"act-{next(_ids)}"
        self.actions[action_id] = {
            "device": device,
            "type": kind,
            "started": time.monotonic(),
            "started_at": now(),
            "end": None,
        }
        return action_id

    def action(self, action_id: str) -> dict[str, Any]:
        """The action as the API shows it, ending it once its time is up."""
        act = self.actions[action_id]
        if act["end"] is None and time.monotonic() - act["started"] >= self.action_seconds:
            act["end"] = {"finished_at": now(), **self._finish(act["device"], act["type"])}
        shown = act["end"] or {"status": "running", "finished_at": None, "result": None, "error": None}
        return {"action_id": action_id, "type": act["type"], "started_at": act["started_at"], **shown}

    @staticmethod
    def _finish(device: Device, kind: str) -> dict[str, Any]:
        if device.unresponsive:
            message = f"the app did not report back on its {kind}"
            return {
                "status": "timeout",
                "result": None,
                "error": {"code": "device_timeout", "message": message},
            }
        if kind == "network-test":
            return {"status": "succeeded", "result": device.network_test(), "error": None}
        device.last_error = err = device.failure(device)
        return {
            "status": "failed" if err else "succeeded",
            "result": {
                "registration_state": "failed" if err else "registered",
                "sip_code": err["sip_code"] if err else 200,
                "reason": err["reason"] if err else "OK",
            },
            "error": {"code": "registration_failed", "message": device.describe(err)} if err else None,
        }


def _error(status: int, code: str, message: str) -> Response:
    resp = jsonify(error={"code": code, "message": message, "retryable": status >= 500})
    resp.status_code = status
    return resp


def _device(d: Device) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "kind": "desktop",
        "platform": "linux",
        "app": d.app,
        "app_version": "1.0.0",
        "online": d.online,
        "last_seen": now(),
        "accounts": [f"{d.user}@{d.domain}"],
    }


def _account(d: Device) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "display_name": f"User {d.user}",
        "sip_username": d.user,
        "auth_username": d.auth_username,
        "domain": d.domain,
        "server": dict(d.server),
        "outbound_proxy": None,
        "register": True,
        "expires": 600,
        "srtp": "optional",
        "stun": None,
        "password_set": True,
        "credential_fingerprint": d.fingerprint,
    }


def _status(d: Device) -> dict[str, Any]:
    err = d.last_error
    registration = {
        "state": d.state or ("failed" if err else "registered"),
        "since": now(),
        "expires_in": None if err else 600,
        "registrar": {**d.server, "resolved_ip": d.server["host"]},
        "attempts": 5 if err else 1,
        "last_error": {**err, "message": d.describe(err), "at": now()} if err else None,
    }
    return {
        "device_id": d.device_id,
        "app_state": "running",
        "network": {"online": True, "type": "wifi", "local_ip": "192.168.1.23", "public_ip": None},
        "accounts": [
            {"account_id": ACCOUNT, "aor": f"sip:{d.user}@{d.domain}", "registration": registration}
        ],
    }


def create(backend: Backend) -> Flask:
    """The App Management API of `backend`, at `/v1/...`."""
    app = Flask(__name__)

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return _error(404, "device_not_found", "no such resource")

    @app.errorhandler(405)
    def _not_allowed(_exc: Exception) -> Response:
        return _error(404, "device_not_found", "no such resource")

    @app.route("/v1/<path:path>", methods=["GET", "POST", "PATCH"])
    def api(path: str) -> Response:
        if request.headers.get("Authorization") != f"Bearer {backend.token}":
            return _error(401, "unauthorized", "missing or wrong bearer token")
        with backend.lock:
            return _route(backend, path.strip("/").split("/"))

    return app


def _route(backend: Backend, parts: list[str]) -> Response:
    if parts == ["users"]:
        email = request.args.get("email", "")
        if len(email) < 3:
            return _error(422, "invalid_config", "email: expected an e-mail address")
        return jsonify(users=[u for u in backend.users if u.get("email", "").lower() == email.lower()])
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "devices":
        return jsonify(devices=[_device(d) for d in backend.devices if d.user == parts[1]])
    if len(parts) == 2 and parts[0] == "actions":
        if parts[1] not in backend.actions:
            return _error(404, "device_not_found", f"no action {parts[1]}")
        return jsonify(backend.action(parts[1]))
    device = backend.device(parts[1]) if len(parts) >= 2 and parts[0] == "devices" else None
    if device is None:
        return _error(404, "device_not_found", "no such device")
    what = "/".join(parts[2:])
    if what == "" and request.method == "GET":
        return jsonify(_device(device))
    if what == "capabilities":
        return jsonify(device.capabilities)
    if what == "config" and request.method == "GET":
        return jsonify(accounts=[_account(device)])
    if not device.online:
        return _error(503, "device_offline", "the app is not connected")
    if what == "status":
        return jsonify(_status(device))
    if what == "logs":
        return _logs(backend, device)
    if what == "config" and request.method == "PATCH":
        return _patch(backend, device)
    if len(parts) == 4 and parts[2] == "actions" and request.method == "POST":
        capability = ACTIONS.get(parts[3])
        if capability is None:
            return _error(404, "device_not_found", f"no action type {parts[3]}")
        if not device.capabilities.get(capability):
            return _error(501, "unsupported", f"{device.app} cannot {parts[3]}")
        if parts[3] not in ("reconnect", "network-test"):
            return _error(501, "unsupported", f"{device.app} cannot {parts[3]}")
        action_id = backend.start(device, parts[3])
        resp = jsonify(action_id=action_id, status="accepted", poll=f"/v1/actions/{action_id}")
        resp.status_code = 202
        return resp
    return _error(404, "device_not_found", "no such resource")


def _patch(backend: Backend, device: Device) -> Response:
    if device.managed:
        return _error(403, "forbidden", "configuration is managed by provisioning")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("account_id") != ACCOUNT:
        return _error(422, "invalid_config", f"account_id: expected {ACCOUNT}")
    if unknown := set(body) - PATCHABLE:
        return _error(422, "invalid_config", f"unknown fields: {', '.join(sorted(unknown))}")
    server = body.get("server")
    if server is not None:
        if not isinstance(server, dict) or not {"host", "port", "transport"} <= set(server):
            return _error(422, "invalid_config", "server: needs host, port and transport")
        device.server = {
            "host": str(server["host"]),
            "port": int(server["port"]),
            "transport": str(server["transport"]),
        }
    for name in ("auth_username", "domain"):
        if body.get(name):
            setattr(device, name, str(body[name]))
    if body.get("password"):
        device.password = str(body["password"])
    device.patches.append({k: ("***" if k == "password" else v) for k, v in body.items()})
    answer: dict[str, Any] = {"accounts": [_account(device)]}
    if body.get("reregister"):
        answer["action_id"] = backend.start(device, "reconnect")
    return jsonify(answer)


def _logs(backend: Backend, device: Device) -> Response:
    limit = request.args.get("limit", "500")
    cursor = request.args.get("cursor", "0")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000 or not cursor.isdigit():
        return _error(422, "invalid_config", "limit must be 1..1000 and cursor a cursor from a previous page")
    start, end = int(cursor), int(cursor) + min(int(limit), backend.log_page)
    entries = [
        {
            "ts": now(),
            "level": "error" if "error" in line.lower() else "info",
            "component": "sip",
            "message": line,
            "raw": line,
        }
        for line in device.log[start:end]
    ]
    return jsonify(
        entries=entries,
        next_cursor=str(end) if end < len(device.log) else None,
        truncated=False,
        source="app_log",
    )

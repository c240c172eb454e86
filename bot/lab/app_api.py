"""A stand-in for the softphone's backend: the App Management API v1 (docs/app-management-api.yaml).

Each scenario's backend lives under its own base path, `http://127.0.0.1:<port>/<scenario>/v1/...`,
with one device of the scenario's lab user. A reconnect is an asynchronous action that ends after
`reconnect_seconds`; whether the app then registers is decided by the instance's state, so what
connbot fixed really helps and what it cannot fix keeps failing. Bearer authentication; errors as
`{"error": {"code", "message", "retryable"}}`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from bot.lab.scenarios import DOMAIN, REALM, Instance, now

CAPABILITIES = {
    "reconnect": True,
    "resync": False,
    "network_test": False,
    "logs": True,
    "collect_logs": False,
    "config_read": True,
    "config_write": ["server", "port", "transport", "password"],
    "credential_fingerprint": ["md5-ha1"],
}
PATCHABLE = {"account_id", "server", "domain", "sip_username", "auth_username", "password", "reregister"}
ACTIONS = ("reconnect", "resync", "network-test", "collect-logs")
_ids = itertools.count(1)


def _error(status: int, code: str, message: str) -> Response:
    resp = jsonify(error={"code": code, "message": message, "retryable": status >= 500})
    resp.status_code = status
    return resp


def device_id(inst: Instance) -> str:
    return f"lab-{inst.user}"


def _device(inst: Instance) -> dict[str, Any]:
    return {
        "device_id": device_id(inst),
        "kind": "desktop",
        "platform": "linux",
        "app": "LabPhone",
        "app_version": "1.0.0",
        "online": True,
        "last_seen": now(),
        "accounts": [f"{inst.user}@{DOMAIN}"],
    }


def _account(inst: Instance) -> dict[str, Any]:
    return {
        "account_id": "acc-1",
        "display_name": f"Lab user {inst.user}",
        "sip_username": inst.user,
        "auth_username": inst.user,
        "domain": DOMAIN,
        "server": dict(inst.server),
        "outbound_proxy": None,
        "register": True,
        "expires": 600,
        "srtp": "optional",
        "stun": None,
        "password_set": True,
        "credential_fingerprint": {"algorithm": "md5-ha1", "realm": REALM, "value": inst.fingerprint()},
    }


def _status(inst: Instance) -> dict[str, Any]:
    err = inst.last_error
    registration = {
        "state": "failed" if err else "registered",
        "since": now(),
        "expires_in": None if err else 600,
        "registrar": {**inst.server, "resolved_ip": inst.server["host"]},
        "attempts": 5 if err else 1,
        "last_error": {
            **err,
            "message": f"reg: sip:{inst.user}@{DOMAIN}: {err['sip_code']} {err['reason']}",
            "at": now(),
        }
        if err
        else None,
    }
    return {
        "device_id": device_id(inst),
        "app_state": "running",
        "network": {"online": True, "type": "wifi", "local_ip": "192.168.1.23", "public_ip": None},
        "accounts": [
            {"account_id": "acc-1", "aor": f"sip:{inst.user}@{DOMAIN}", "registration": registration}
        ],
    }


class Backend:
    """The App Management API of every scenario's instance; actions end `reconnect_seconds` after they start."""

    def __init__(self, instances: Mapping[str, Instance], reconnect_seconds: float):
        self.instances = instances
        self.reconnect_seconds = reconnect_seconds

    def start(self, inst: Instance) -> str:
        action_id = f"act-{next(_ids)}"
        inst.actions[action_id] = {
            "type": "reconnect",
            "started": time.monotonic(),
            "started_at": now(),
            "end": None,
        }
        return action_id

    def action(self, inst: Instance, action_id: str) -> dict[str, Any]:
        """The action as the API shows it, ending it (and updating the registration) once its time is up."""
        act = inst.actions[action_id]
        if act["end"] is None and time.monotonic() - act["started"] >= self.reconnect_seconds:
            inst.last_error = inst.failure()
            err = inst.last_error
            act["end"] = {
                "status": "failed" if err else "succeeded",
                "finished_at": now(),
                "result": {
                    "registration_state": "failed" if err else "registered",
                    "sip_code": err["sip_code"] if err else 200,
                    "reason": err["reason"] if err else "OK",
                },
                "error": {"code": "registration_failed", "message": f"{err['sip_code']} {err['reason']}"}
                if err
                else None,
            }
        shown = act["end"] or {"status": "running", "finished_at": None, "result": None, "error": None}
        return {"action_id": action_id, "type": act["type"], "started_at": act["started_at"], **shown}

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.errorhandler(404)
        def _not_found(_exc: Exception) -> Response:
            return _error(404, "device_not_found", "no such resource")

        @app.route("/<scenario>/v1/<path:path>", methods=["GET", "POST", "PATCH"])
        def api(scenario: str, path: str) -> Response:
            inst = self.instances.get(scenario)
            if inst is None:
                return _error(404, "device_not_found", "no such backend")
            if request.headers.get("Authorization") != f"Bearer {inst.app_token}":
                return _error(401, "unauthorized", "missing or wrong bearer token")
            with inst.lock:
                return self._route(inst, path.strip("/").split("/"))

        return app

    def _route(self, inst: Instance, parts: list[str]) -> Response:
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "devices":
            return jsonify(devices=[_device(inst)] if parts[1] == inst.user else [])
        if len(parts) == 2 and parts[0] == "actions":
            if parts[1] not in inst.actions:
                return _error(404, "device_not_found", f"no action {parts[1]}")
            return jsonify(self.action(inst, parts[1]))
        if len(parts) < 2 or parts[0] != "devices" or parts[1] != device_id(inst):
            return _error(404, "device_not_found", "no such device")
        what = "/".join(parts[2:])
        if what == "" and request.method == "GET":
            return jsonify(_device(inst))
        if what == "capabilities":
            return jsonify(CAPABILITIES)
        if what == "status":
            return jsonify(_status(inst))
        if what == "logs":
            return self._logs(inst)
        if what == "config":
            return self._patch(inst) if request.method == "PATCH" else jsonify(accounts=[_account(inst)])
        if len(parts) == 4 and parts[2] == "actions" and request.method == "POST":
            if parts[3] not in ACTIONS:
                return _error(404, "device_not_found", f"no action type {parts[3]}")
            if parts[3] != "reconnect":
                return _error(501, "unsupported", f"LabPhone cannot {parts[3]}")
            action_id = self.start(inst)
            resp = jsonify(action_id=action_id, status="accepted", poll=f"/v1/actions/{action_id}")
            resp.status_code = 202
            return resp
        return _error(404, "device_not_found", "no such resource")

    def _patch(self, inst: Instance) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("account_id") != "acc-1":
            return _error(422, "invalid_config", "account_id: expected acc-1")
        if unknown := set(body) - PATCHABLE:
            return _error(422, "invalid_config", f"unknown fields: {', '.join(sorted(unknown))}")
        server = body.get("server")
        if server is not None:
            if not isinstance(server, dict) or not {"host", "port", "transport"} <= set(server):
                return _error(422, "invalid_config", "server: needs host, port and transport")
            inst.server = {
                "host": str(server["host"]),
                "port": int(server["port"]),
                "transport": str(server["transport"]),
            }
        if body.get("password"):
            inst.app_password = str(body["password"])
        answer: dict[str, Any] = {"accounts": [_account(inst)]}
        if body.get("reregister"):
            answer["action_id"] = self.start(inst)
        return jsonify(answer)

    def _logs(self, inst: Instance) -> Response:
        limit = request.args.get("limit", "500")
        cursor = request.args.get("cursor", "0")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000 or not cursor.isdigit():
            return _error(
                422, "invalid_config", "limit must be 1..1000 and cursor a cursor from a previous page"
            )
        lines = inst.log_lines()
        start, end = int(cursor), int(cursor) + int(limit)
        entries = [
            {
                "ts": now(),
                "level": "error" if "error" in line.lower() else "info",
                "component": "sip",
                "message": line,
                "raw": line,
            }
            for line in lines[start:end]
        ]
        return jsonify(
            entries=entries,
            next_cursor=str(end) if end < len(lines) else None,
            truncated=False,
            source="app_log",
        )

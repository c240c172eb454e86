"""A stand-in for Asterisk's REST interface (ARI), one simulated Asterisk per scenario.

Each scenario's Asterisk lives under its own base path: `http://127.0.0.1:<port>/<scenario>/ari/...`.
It answers the calls connbot makes with the shapes of the official ARI api-docs (asterisk.json,
endpoints.json): ping, info, modules, the res_pjsip dynamic configuration (GET/PUT of endpoint,
auth and aor objects) and endpoints; HTTP Basic authentication; errors as `{"message": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from bot.lab.scenarios import Instance, now

OBJECT_TYPES = ("endpoint", "auth", "aor")
ARI_USER = "connbot"
ENTITY = "02:42:ac:11:00:02"
DESCRIPTIONS = {
    "res_pjsip.so": "Basic SIP resource",
    "res_pjsip_registrar.so": "PJSIP Registrar Support",
    "chan_pjsip.so": "PJSIP Channel Driver",
    "res_config_pgsql.so": "PostgreSQL RealTime Configuration Driver",
}


def _error(status: int, message: str) -> Response:
    resp = jsonify(message=message)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="Asterisk REST Interface"'
    return resp


def _tuples(fields: Mapping[str, str]) -> Response:
    return jsonify([{"attribute": k, "value": v} for k, v in fields.items()])


def _module(name: str, status: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": DESCRIPTIONS.get(name, name),
        "use_count": 1,
        "status": status,
        "support_level": "core",
    }


def _info(only: set[str]) -> dict[str, Any]:
    started = "2026-01-05T08:00:01.000+0000"
    info = {
        "build": {
            "os": "Linux",
            "kernel": "6.1.0",
            "options": "",
            "machine": "x86_64",
            "date": "2026-01-01",
            "user": "lab",
        },
        "system": {"version": "22.5.0", "entity_id": ENTITY},
        "config": {
            "name": "lab",
            "default_language": "en",
            "setid": {"user": "asterisk", "group": "asterisk"},
        },
        "status": {"startup_time": started, "last_reload_time": started},
    }
    return {k: v for k, v in info.items() if not only or k in only}


def create(instances: Mapping[str, Instance]) -> Flask:
    """The ARI stand-in for every scenario's instance."""
    app = Flask(__name__)

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return _error(404, "Resource not found")

    @app.errorhandler(405)
    def _not_allowed(_exc: Exception) -> Response:
        return _error(405, "Invalid method")

    @app.route("/<scenario>/ari/<path:path>", methods=["GET", "PUT"])
    def ari(scenario: str, path: str) -> Response:
        inst = instances.get(scenario)
        if inst is None:
            return _error(404, "Resource not found")
        auth = request.authorization
        if auth is None or auth.username != ARI_USER or auth.password != inst.ari_password:
            return _error(401, "Authentication required")
        with inst.lock:
            return _route(inst, path.strip("/").split("/"))

    return app


def _route(inst: Instance, parts: list[str]) -> Response:
    if parts == ["asterisk", "ping"]:
        return jsonify(asterisk_id=ENTITY, ping="pong", timestamp=now())
    if parts == ["asterisk", "info"]:
        only = {p for v in request.args.getlist("only") for p in v.split(",") if p}
        return jsonify(_info(only))
    if parts == ["asterisk", "modules"]:
        return jsonify([_module(n, st) for n, st in inst.modules.items()])
    if len(parts) == 3 and parts[:2] == ["asterisk", "modules"]:
        status = inst.modules.get(parts[2])
        return (
            jsonify(_module(parts[2], status))
            if status
            else _error(404, "Module could not be found in running modules")
        )
    if len(parts) == 6 and parts[:3] == ["asterisk", "config", "dynamic"]:
        return _config(inst, *parts[3:])
    if parts[0] == "endpoints":
        return _endpoints(inst, parts[1:])
    return _error(404, "Resource not found")


def _config(inst: Instance, config_class: str, object_type: str, object_id: str) -> Response:
    if config_class != "res_pjsip":
        return _error(404, "configClass not found")
    if object_type not in OBJECT_TYPES:
        return _error(404, "objectType not found")
    store = inst.objects.setdefault(object_type, {})
    if request.method == "GET":
        found = store.get(object_id)
        return _tuples(found) if found is not None else _error(404, f"Object with id '{object_id}' not found")
    body = request.get_json(silent=True)
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list) or not all(
        isinstance(f, dict) and isinstance(f.get("attribute"), str) for f in fields
    ):
        return _error(400, "Bad request body")
    store.setdefault(object_id, {}).update({f["attribute"]: str(f.get("value", "")) for f in fields})
    return _tuples(store[object_id])


def _endpoints(inst: Instance, rest: list[str]) -> Response:
    state = "online" if inst.last_error is None else "offline"
    endpoints = [
        {
            "technology": "PJSIP",
            "resource": e,
            "state": state if e == inst.user else "offline",
            "channel_ids": [],
        }
        for e in inst.objects.get("endpoint", {})
    ]
    if not rest:
        return jsonify(endpoints)
    if rest[0] != "PJSIP":
        return _error(404, "Endpoints not found")
    if len(rest) == 1:
        return jsonify(endpoints)
    found = next((e for e in endpoints if e["resource"] == rest[1]), None)
    return jsonify(found) if found and len(rest) == 2 else _error(404, "Endpoint not found")

"""Asterisk's REST interface (ARI): one simulated Asterisk per application, under `/ari`.

It answers the calls connbot makes with the shapes of the official api-docs (asterisk.json,
endpoints.json): ping, info, modules, the res_pjsip push configuration (GET/PUT of endpoint,
auth and aor objects) and endpoint state; HTTP Basic authentication; every error as
`{"message": ...}` with the texts of res/res_ari.c and res/ari/resource_asterisk.c.

The state is an `Asterisk`. Its PJSIP objects live in a realtime database (sorcery `realtime`
wizard, writable) unless `writable` is off (the static pjsip.conf wizard: every write is 403).
While its realtime database is down (`db_up` off) a configuration look-up waits for the dead
database (`db_wait` seconds) and then finds nothing (404), and a write fails (403), as
res_config_pgsql makes sorcery fail; a slow database (`lookup_seconds`) slows every look-up.
A stopped Asterisk answers nothing at all: that is the serving side's business (`simulators.pbx`
closes its ports).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

OBJECT_TYPES = ("endpoint", "auth", "aor")
ARI_USER = "connbot"
ENTITY = "02:42:ac:11:00:02"
PJSIP_MODULE = "res_pjsip.so"
REGISTRAR_MODULE = "res_pjsip_registrar.so"
CHANNEL_MODULE = "chan_pjsip.so"
DB_LINK_MODULE = "res_config_pgsql.so"
SIP_STACK = (PJSIP_MODULE, REGISTRAR_MODULE, CHANNEL_MODULE)
DESCRIPTIONS = {
    PJSIP_MODULE: "Basic SIP resource",
    REGISTRAR_MODULE: "PJSIP Registrar Support",
    CHANNEL_MODULE: "PJSIP Channel Driver",
    DB_LINK_MODULE: "PostgreSQL RealTime Configuration Driver",
}
STARTED = "2026-01-05T08:00:01.000+0000"
TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})  # what Asterisk's ast_true takes as on


def timestamp() -> str:
    """Now, in ARI's format (`%FT%T.%q%z`)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


@dataclass
class Asterisk:
    """One Asterisk's state as ARI shows it (changed under `lock`)."""

    ari_password: str
    objects: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    modules: dict[str, str] = field(
        default_factory=lambda: {m: "Running" for m in (*SIP_STACK, DB_LINK_MODULE)}
    )
    writable: bool = True  # the sorcery wizard of the PJSIP objects accepts writes
    read_only_user: bool = False  # connbot's ARI user has `read_only = yes`
    db_up: bool = True  # the realtime database answers
    db_wait: float = 2.0  # seconds a look-up waits for a dead realtime database
    lookup_seconds: float = 0.0  # seconds every configuration look-up or write takes (a slow database)
    invalid: set[str] = field(default_factory=set)  # object types whose writes fail field validation
    online: Callable[[str], bool] = lambda resource: False  # whether an endpoint has an available contact
    writes: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def stop_modules(self, *names: str) -> None:
        """The modules stay loaded but do not run (ARI shows `"status": "Not Running"`)."""
        for name in names:
            self.modules[name] = "Not Running"

    def database_down(self) -> None:
        """The realtime database is unreachable: the DB link module reports it, look-ups fail."""
        self.db_up = False
        self.stop_modules(DB_LINK_MODULE)

    def repair(self) -> None:
        """What an administrator's fix leaves: every module running, the realtime database back."""
        self.db_up = True
        for name in self.modules:
            self.modules[name] = "Running"

    @property
    def sip_stack_running(self) -> bool:
        return self.modules.get(PJSIP_MODULE) == "Running"


def _error(status: int, message: str) -> Response:
    resp = jsonify(message=message)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="Asterisk REST Interface"'
    return resp


def _tuples(fields: dict[str, str]) -> Response:
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
    info = {
        "build": {
            "os": "Linux",
            "kernel": "6.1.0",
            "options": "",
            "machine": "x86_64",
            "date": "2026-01-01",
            "user": "asterisk",
        },
        "system": {"version": "22.5.0", "entity_id": ENTITY},
        "config": {
            "name": "asterisk",
            "default_language": "en",
            "setid": {"user": "asterisk", "group": "asterisk"},
        },
        "status": {"startup_time": STARTED, "last_reload_time": STARTED},
    }
    return {k: v for k, v in info.items() if not only or k in only}


def create(asterisk: Asterisk) -> Flask:
    """The ARI of `asterisk`, at `/ari/...`."""
    app = Flask(__name__)

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return _error(404, "Resource not found")

    @app.errorhandler(405)
    def _not_allowed(_exc: Exception) -> Response:
        return _error(405, "Invalid method")

    @app.route("/ari/<path:path>", methods=["GET", "PUT"])
    def ari(path: str) -> Response:
        auth = request.authorization
        if auth is None or auth.username != ARI_USER or auth.password != asterisk.ari_password:
            return _error(401, "Authentication required")
        if request.method != "GET" and asterisk.read_only_user:
            return _error(403, "Write access denied")
        parts = path.strip("/").split("/")
        if parts[:3] == ["asterisk", "config", "dynamic"] and len(parts) == 6:
            if not asterisk.db_up:
                return _config_without_db(asterisk, parts[4], parts[5])
            time.sleep(asterisk.lookup_seconds)
        with asterisk.lock:
            return _route(asterisk, parts)

    return app


def _route(asterisk: Asterisk, parts: list[str]) -> Response:
    if parts == ["asterisk", "ping"]:
        return jsonify(asterisk_id=ENTITY, ping="pong", timestamp=timestamp())
    if parts == ["asterisk", "info"]:
        only = {p for v in request.args.getlist("only") for p in v.split(",") if p}
        return jsonify(_info(only))
    if parts == ["asterisk", "modules"]:
        return jsonify([_module(n, st) for n, st in asterisk.modules.items()])
    if len(parts) == 3 and parts[:2] == ["asterisk", "modules"]:
        status = asterisk.modules.get(parts[2])
        return (
            jsonify(_module(parts[2], status))
            if status
            else _error(404, "Module could not be found in running modules")
        )
    if len(parts) == 6 and parts[:3] == ["asterisk", "config", "dynamic"]:
        return _config(asterisk, *parts[3:])
    if parts[0] == "endpoints":
        return _endpoints(asterisk, parts[1:])
    return _error(404, "Resource not found")


def _config_without_db(asterisk: Asterisk, object_type: str, object_id: str) -> Response:
    """Sorcery's realtime wizard with a dead database: the look-up waits, then finds nothing."""
    if request.method == "GET":
        time.sleep(asterisk.db_wait)
        return _error(404, f"Object with id '{object_id}' not found")
    return _error(403, f"Cannot create sorcery objects of type '{object_type}'")


def _config(asterisk: Asterisk, config_class: str, object_type: str, object_id: str) -> Response:
    if config_class != "res_pjsip":
        return _error(404, f"configClass '{config_class}' not found")
    if object_type not in OBJECT_TYPES:
        return _error(404, f"objectType '{object_type}' not found")
    store = asterisk.objects.setdefault(object_type, {})
    found = store.get(object_id)
    if request.method == "GET":
        return _tuples(found) if found is not None else _error(404, f"Object with id '{object_id}' not found")
    if not asterisk.writable:
        action = "update" if found is not None else "create"
        return _error(403, f"Cannot {action} sorcery objects of type '{object_type}'")
    body = request.get_json(silent=True)
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list) or not all(
        isinstance(f, dict) and isinstance(f.get("attribute"), str) for f in fields
    ):
        return _error(400, "Bad request body")
    if not fields and found is not None:
        return _error(400, f"Fields must be provided to update object '{object_id}'")
    if object_type in asterisk.invalid:
        verb = "Update" if found is not None else "Creation"
        return _error(400, f"{verb} of object '{object_id}' failed field value validation")
    values = {f["attribute"]: str(f.get("value", "")) for f in fields}
    asterisk.writes.append((object_type, object_id, values))
    store.setdefault(object_id, {}).update(values)
    return _tuples(store[object_id])


def _endpoints(asterisk: Asterisk, rest: list[str]) -> Response:
    endpoints: list[dict[str, Any]] = [
        {
            "technology": "PJSIP",
            "resource": e,
            "state": "online" if asterisk.online(e) else "offline",
            "channel_ids": [],
        }
        for e in asterisk.objects.get("endpoint", {})
    ]
    if not rest:
        return jsonify(endpoints)
    if rest[0] != "PJSIP":
        return _error(404, "Endpoints not found")
    if len(rest) == 1:
        return jsonify(endpoints)
    found = next((e for e in endpoints if e["resource"] == rest[1]), None)
    return jsonify(found) if found and len(rest) == 2 else _error(404, "Endpoint not found")

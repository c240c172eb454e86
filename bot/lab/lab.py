"""The lab: every scenario's stand-ins on loopback, wired into connbot through the PBX directory.

`Lab.start()` binds the ARI and App Management API stand-ins (one HTTP server each, a base path
per scenario) and one SIP port per scenario, then writes a PBX directory into `<data_dir>/lab/`
with one instance per scenario, routed by the desk ticket's `lab_scenario` field. Its
`environment()` names that file and gives each instance's secrets random values; with those in
the environment the real fleet routing and the real adapters check each lab ticket against its
scenario's stand-ins, and nothing in the runner or the adapters knows about the lab.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from bot.lab import ari
from bot.lab.app_api import Backend
from bot.lab.scenarios import DOMAIN, HOST, SCENARIOS, Instance, Scenario
from bot.lab.sip import SipPorts
from integrations.settings import Section

FIELD = "lab_scenario"
# Quick enough for a demo: a reconnect ends after about a second; a silent SIP port costs 3 x 0.5 s.
TIMINGS = {
    "CONNBOT_APP_POLL_INTERVAL": "0.25",
    "CONNBOT_APP_RECONNECT_DEADLINE": "10",
    "CONNBOT_NET_TIMEOUT": "0.5",
    "CONNBOT_NET_PROBES": "3",
    "CONNBOT_NET_PROBE_INTERVAL": "0.05",
}


class LabSettings(Section):
    """`CONNBOT_LAB`: start the lab with `connbot serve` (as `--lab` does)."""

    lab: bool = Field(False, description="run the simulated PBXs and app backends of the lab scenarios")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """The stand-ins' requests are not connbot's; keep them out of its log."""


def _variable(scenario: str, what: str) -> str:
    return f"CONNBOT_LAB_{scenario.upper()}_{what}"


class Lab:
    """The running stand-ins of every scenario and the directory that routes lab tickets to them."""

    def __init__(self, data_dir: Path, reconnect_seconds: float = 1.0):
        self.directory = data_dir / "lab" / "pbx-directory.yaml"
        self.reconnect_seconds = reconnect_seconds
        self.scenarios: dict[str, Scenario] = dict(SCENARIOS)
        self.instances: dict[str, Instance] = {}
        self._sip = SipPorts()
        self._servers: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(self) -> Lab:
        for name, scenario in self.scenarios.items():
            port = self._sip.open("200 OK" if scenario.sip_answers else None)
            keys = {k: secrets.token_urlsafe(16) for k in ("sip", "ari", "app")}
            self.instances[name] = Instance.build(scenario, port, keys)
        self._sip.start()
        self.ari_url = self._serve(ari.create(self.instances))
        self.app_url = self._serve(Backend(self.instances, self.reconnect_seconds).app())
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self.directory.write_text(yaml.safe_dump(self.directory_data(), sort_keys=False), encoding="utf-8")
        return self

    def _serve(self, app: Any) -> str:
        server = make_server(HOST, 0, app, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="lab-http", daemon=True
        )
        thread.start()
        self._servers.append((server, thread))
        return f"http://{HOST}:{server.server_port}"

    def directory_data(self) -> dict[str, Any]:
        """The PBX directory: one instance per scenario, customer key = the scenario's name."""
        return {
            "routing": [{"field": FIELD}],
            "instances": [
                {
                    "name": name,
                    "customers": [name],
                    "ari": {
                        "url": f"{self.ari_url}/{name}",
                        "username": ari.ARI_USER,
                        "password_env": _variable(name, "ARI_PASSWORD"),
                    },
                    "sip": {"host": HOST, "port": inst.sip_port, "transport": "udp", "domain": DOMAIN},
                    "app": {"url": f"{self.app_url}/{name}", "token_env": _variable(name, "APP_TOKEN")},
                }
                for name, inst in self.instances.items()
            ],
        }

    def environment(self) -> dict[str, str]:
        """What connbot's process needs to use the lab: the directory, the secrets, quick timings."""
        env = {"CONNBOT_PBX_DIRECTORY": str(self.directory), **TIMINGS}
        for name, inst in self.instances.items():
            env[_variable(name, "ARI_PASSWORD")] = inst.ari_password
            env[_variable(name, "APP_TOKEN")] = inst.app_token
        return env

    def stop(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(5)
        self._servers.clear()
        self._sip.stop()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

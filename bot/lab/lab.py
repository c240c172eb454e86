"""The lab: every scenario's simulated PBX and app backend on loopback, wired into connbot through
the PBX directory.

`Lab.start()` builds each scenario's world (`scenarios.Instance`: an Asterisk with its own ARI and
SIP ports, an app backend under `/<scenario>` of one shared HTTP server), then writes a PBX
directory into `<data_dir>/lab/` with one instance per scenario, routed by the desk ticket's
`lab_scenario` field. Its `environment()` names that file and gives each instance's secrets random
values; with those overlaid on the environment connbot's services are built from (never written
into the process's), the real fleet routing and the real adapters check each lab ticket against
its scenario's simulators, and nothing in the runner or the adapters knows about the lab.
`repair(name)` makes the fix a person would make in one scenario (restart Asterisk, open the
path); `reset()` puts every scenario back to its initial state.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from bot.lab.scenarios import DOMAIN, SCENARIOS, Instance, Scenario
from integrations.settings import Section
from simulators import app_api
from simulators.ari import ARI_USER
from simulators.serve import HOST, Server

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


def _variable(scenario: str, what: str) -> str:
    return f"CONNBOT_LAB_{scenario.upper()}_{what}"


class Lab:
    """The running simulators of every scenario and the directory that routes lab tickets to them."""

    def __init__(
        self,
        data_dir: Path,
        reconnect_seconds: float = 1.0,
        db_wait: float = 2.0,
        only: Iterable[str] = (),
        users: Mapping[str, int] | None = None,
    ):
        """`only`: the scenarios to run (default all); `users`: how many users a scenario's PBX has
        (default 1; more for a storm of tickets)."""
        self.directory = data_dir / "lab" / "pbx-directory.yaml"
        self.reconnect_seconds = reconnect_seconds
        self.db_wait = db_wait
        wanted = set(only)
        self.scenarios: dict[str, Scenario] = {
            n: s for n, s in SCENARIOS.items() if not wanted or n in wanted
        }
        self.users = dict(users or {})
        self.instances: dict[str, Instance] = {}
        dispatcher = DispatcherMiddleware(NotFound())
        self._mounts: dict[str, Any] = dispatcher.mounts  # each scenario's backend under /<scenario>
        self._apps = Server(dispatcher)
        self._lock = threading.Lock()

    @property
    def app_url(self) -> str:
        return self._apps.url

    def start(self) -> Lab:
        with self._lock:
            for name, scenario in self.scenarios.items():
                keys = {k: secrets.token_urlsafe(16) for k in ("sip", "ari", "app")}
                inst = Instance(
                    scenario, keys, self.reconnect_seconds, self.db_wait, users=self.users.get(name, 1)
                )
                self._build(name, inst)
        self._apps.start()
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self.directory.write_text(yaml.safe_dump(self.directory_data(), sort_keys=False), encoding="utf-8")
        return self

    def _build(self, name: str, inst: Instance) -> None:
        self.instances[name] = inst
        self._mounts[f"/{name}"] = app_api.create(inst.backend)

    def reset(self) -> None:
        """Every scenario back to its initial state, on the same ports and with the same secrets."""
        with self._lock:
            for name, old in list(self.instances.items()):
                old.stop()
                ports = (old.pbx.ari.port, old.pbx.sip.port)
                users = self.users.get(name, 1)
                inst = Instance(old.scenario, old.keys, self.reconnect_seconds, self.db_wait, ports, users)
                self._build(name, inst)

    def repair(self, name: str) -> Instance:
        """Do, in scenario `name`, the fix a person would make outside connbot's reach (`Instance.repair`).

        Raises KeyError for an unknown scenario."""
        with self._lock:
            inst = self.instances[name]
            inst.repair()
            return inst

    def directory_data(self) -> dict[str, Any]:
        """The PBX directory: one instance per scenario, customer key = the scenario's name."""
        return {
            "routing": [{"field": FIELD}],
            "instances": [
                {
                    "name": name,
                    "customers": [name],
                    "ari": {
                        "url": inst.pbx.ari_url,
                        "username": ARI_USER,
                        "password_env": _variable(name, "ARI_PASSWORD"),
                    },
                    "sip": {"host": HOST, "port": inst.pbx.sip_port, "transport": "udp", "domain": DOMAIN},
                    "app": {"url": f"{self.app_url}/{name}", "token_env": _variable(name, "APP_TOKEN")},
                }
                for name, inst in self.instances.items()
            ],
        }

    def environment(self) -> dict[str, str]:
        """What connbot's settings need to use the lab, as an overlay on the environment: the
        directory, the secrets, quick timings."""
        env = {"CONNBOT_PBX_DIRECTORY": str(self.directory), **TIMINGS}
        for name, inst in self.instances.items():
            env[_variable(name, "ARI_PASSWORD")] = inst.keys["ari"]
            env[_variable(name, "APP_TOKEN")] = inst.keys["app"]
        return env

    def stop(self) -> None:
        with self._lock:
            for inst in self.instances.values():
                inst.stop()
        self._apps.stop()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

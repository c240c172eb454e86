"""Two customers, two PBX instances: a directory file, their secrets in the environment, and
their ARI and app backends faked at the wire on different hosts (see wire_fakes.py)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml

from simulators.app_api import Backend
from tests.unit.integrations.wire_fakes import FakeAri, app_backend, check_contract

SECRETS = {
    "ACME_ARI_PASSWORD": "acme-ari-pw",
    "ACME_APP_TOKEN": "acme-app-token",
    "GLOBEX_ARI_PASSWORD": "globex-ari-pw",
    "GLOBEX_APP_TOKEN": "globex-app-token",
}
HOSTS = {"acme": ("pbx.acme.test", "app.acme.test"), "globex": ("pbx.globex.test", "app.globex.test")}
ROUTING = [{"field": "customer"}, "email_domain", {"summary": r"\[(?P<customer>[A-Za-z0-9-]+)\]"}]


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def instance(name: str, customers: list[str], sip_port: int, **extra: Any) -> dict[str, Any]:
    ari, app = HOSTS.get(name, (f"pbx.{name}.test", f"app.{name}.test"))
    upper = name.upper()
    return {
        "name": name,
        "customers": customers,
        "ari": {"url": f"http://{ari}:8088", "username": "connbot", "password_env": f"{upper}_ARI_PASSWORD"},
        "sip": {"host": "127.0.0.1", "port": sip_port, "transport": "udp", "domain": f"{name}.example"},
        "app": {"url": f"http://{app}", "token_env": f"{upper}_APP_TOKEN"},
        **extra,
    }


def two_customers(sip_ports: tuple[int, int] | None = None) -> dict[str, Any]:
    acme, globex = sip_ports or (closed_udp_port(), closed_udp_port())
    return {
        "routing": list(ROUTING),
        "instances": [
            instance("acme", ["ACME", "acme.example"], acme, slack_channel="C0ACME"),
            instance(
                "globex",
                ["GLOBEX", "globex.example"],
                globex,
                escalation={"2": {"assignee": "globex-l2", "components": ["Globex voice"]}},
            ),
        ],
    }


def use_directory(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    data: dict[str, Any],
    secrets: dict[str, str] | None = None,
) -> Path:
    """Write the directory, point CONNBOT_PBX_DIRECTORY at it and set the secrets and fast timings."""
    path = tmp_path / "pbx-directory.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("CONNBOT_PBX_DIRECTORY", str(path))
    for name, value in {**SECRETS, **(secrets if secrets is not None else {})}.items():
        monkeypatch.setenv(name, value)
    for name, value in {
        "APP_POLL_INTERVAL": "0.01",
        "APP_RECONNECT_DEADLINE": "0.5",
        "NET_TIMEOUT": "0.3",
        "NET_PROBES": "1",
        "NET_PROBE_INTERVAL": "0",
    }.items():
        monkeypatch.setenv(f"CONNBOT_{name}", value)
    return path


@dataclass
class Backends:
    """Each customer's ARI and app backend."""

    ari: dict[str, FakeAri]
    app: dict[str, Backend]
    rsps: responses.RequestsMock

    def check_contracts(self) -> None:
        """Every exchange with each app backend conforms to the published contract."""
        for name in self.app:
            check_contract(self.rsps, f"http://{HOSTS[name][1]}")

    def hosts_called(self) -> set[str]:
        return {c.request.url.split("/")[2].split(":")[0] for c in self.rsps.calls}

    def calls_to(self, host: str) -> list[Any]:
        return [c for c in self.rsps.calls if c.request.url.split("/")[2].split(":")[0] == host]


def backends(rsps: responses.RequestsMock) -> Backends:
    ari = {
        n: FakeAri(rsps, ari_password=SECRETS[f"{n.upper()}_ARI_PASSWORD"], url=f"http://{HOSTS[n][0]}:8088")
        for n in HOSTS
    }
    app = {
        n: app_backend(rsps, url=f"http://{HOSTS[n][1]}", token=SECRETS[f"{n.upper()}_APP_TOKEN"])
        for n in HOSTS
    }
    return Backends(ari, app, rsps)

"""The lab's scenarios and the state of one simulated PBX instance.

A scenario is a small declarative fault: what is wrong on the PBX, in the app or on the path
between them. `Instance` holds the live state the stand-ins serve for one scenario (PJSIP objects,
module states, the app's configuration and password) and decides whether the app can register
with it, so a fix that connbot makes (a new password, the right port, a created account) really
makes the app register, and a fault outside connbot's reach keeps it failing.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from integrations.pbx.client import ha1

REALM = "asterisk"
DOMAIN = "lab.example"
CONTEXT = "from-internal"
HOST = "127.0.0.1"
REGISTRAR_MODULE = "res_pjsip_registrar.so"
MODULES = ("res_pjsip.so", REGISTRAR_MODULE, "chan_pjsip.so", "res_config_pgsql.so")
DB_LINK_MODULE = "res_config_pgsql.so"
APP_BOOT_LOG = ("LabPhone 1.0 starting", "account acc-1: registering with the PBX")


@dataclass(frozen=True)
class Scenario:
    """One preset: its fault, what a newcomer should see happen, and the lab user it concerns."""

    name: str
    title: str
    description: str
    expect: str
    user: str
    transient: bool = False  # the app failed once; a reconnect is all it needs
    wrong_port: bool = False  # the app registers to the wrong SIP port
    account: bool = True  # the user's PJSIP endpoint, auth and AOR exist
    same_password: bool = True  # the app's password is the PBX's
    sip_answers: bool = True  # the PBX's SIP port answers
    stopped: tuple[str, ...] = ()  # Asterisk modules that are loaded but not running
    hidden: str = ""  # a cause nobody's check sees (only, perhaps, the client's log)
    log: tuple[str, ...] = ()  # what the app's log shows beyond its start


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "healthy_after_reconnect",
            "Healthy after a reconnect",
            "The app lost its registration during a short network outage; everything is fine now.",
            "Closed at level 1 without a person: a temporary network problem.",
            "2001",
            transient=True,
        ),
        Scenario(
            "wrong_server",
            "Wrong PBX port in the app",
            "The app registers to the right PBX address but the wrong port.",
            "Closed at level 1: connbot fixes the app's configuration.",
            "2002",
            wrong_port=True,
        ),
        Scenario(
            "missing_account",
            "Missing account",
            "The user's account does not exist on the PBX.",
            "Closed at level 1 after one click: approve creating the account.",
            "2003",
            account=False,
        ),
        Scenario(
            "password_mismatch",
            "Password mismatch",
            "The app's password differs from the one on the PBX.",
            "Closed at level 1 after one click: approve the password reset.",
            "2004",
            same_password=False,
        ),
        Scenario(
            "network_down",
            "Network path down",
            "The PBX's SIP port does not answer; level 1 finds nothing wrong with the app or the account.",
            "Escalated to level 2, where a person is asked to repair the network path (answer: fixed).",
            "2005",
            sip_answers=False,
        ),
        Scenario(
            "asterisk_module_down",
            "Asterisk module down",
            "Asterisk's SIP registrar module (res_pjsip_registrar.so) is loaded but not running.",
            "Escalated to level 2, where a person is asked to restore the services (answer: fixed).",
            "2006",
            stopped=(REGISTRAR_MODULE,),
        ),
        Scenario(
            "database_down",
            "Database down",
            "Asterisk's link to its realtime database (res_config_pgsql.so) is down.",
            "Escalated to level 2, where a person is asked to restore the services (answer: fixed).",
            "2007",
            stopped=(DB_LINK_MODULE,),
        ),
        Scenario(
            "logs_only",
            "Cause only in the client logs",
            "Every check passes, but the app's log shows its NAT keep-alives failing.",
            "Escalated to level 2, where a person is asked to act on the logs (answer: fixed).",
            "2008",
            hidden="NAT binding lost",
            log=("pjsua_core.c Error sending keep-alive packet: Network is unreachable",) * 3,
        ),
        Scenario(
            "nothing_found",
            "Nothing found",
            "Every check passes and the logs show no known failure.",
            "Escalated to level 3 with the evidence gathered.",
            "2009",
            hidden="unknown cause",
            log=("account acc-1: registration pending", "network change detected: wifi"),
        ),
    )
}
DEFAULT = "password_mismatch"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Instance:
    """The live state of one scenario's PBX and app backend, shared by the stand-ins (under a lock)."""

    scenario: Scenario
    sip_port: int
    password: str  # the PBX's SIP password for the user
    ari_password: str
    app_token: str
    objects: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    app_password: str = ""
    last_error: dict[str, Any] | None = None  # None once the app registered
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def build(cls, scenario: Scenario, sip_port: int, secrets: dict[str, str]) -> Instance:
        user, pw = scenario.user, secrets["sip"]
        inst = cls(scenario, sip_port, pw, secrets["ari"], secrets["app"])
        if scenario.account:
            inst.objects = {
                "endpoint": {
                    user: {
                        "transport": "transport-udp",
                        "aors": user,
                        "auth": user,
                        "context": CONTEXT,
                        "disallow": "all",
                        "allow": "ulaw,alaw",
                        "direct_media": "false",
                    }
                },
                "auth": {
                    user: {
                        "auth_type": "userpass",
                        "username": user,
                        "password": pw,
                        "realm": "",
                        "md5_cred": "",
                    }
                },
                "aor": {user: {"max_contacts": "1", "remove_existing": "yes", "qualify_frequency": "0"}},
            }
        inst.modules = {m: ("Not Running" if m in scenario.stopped else "Running") for m in MODULES}
        inst.server = {"host": HOST, "port": sip_port + (1 if scenario.wrong_port else 0), "transport": "udp"}
        inst.app_password = pw if scenario.same_password else pw[::-1] + "x"
        inst.last_error = inst.first_error()
        return inst

    @property
    def user(self) -> str:
        return self.scenario.user

    def failure(self) -> dict[str, Any] | None:
        """Why the app cannot register now, as the app reports it (None: it can)."""
        s, auth = self.scenario, self.objects.get("auth", {}).get(self.user)
        if (
            self.server != {"host": HOST, "port": self.sip_port, "transport": "udp"}
            or not s.sip_answers
            or s.hidden
        ):
            return {"sip_code": 408, "reason": "Request Timeout", "local_error": "timeout"}
        if self.modules.get(REGISTRAR_MODULE) != "Running" or self.modules.get(DB_LINK_MODULE) != "Running":
            return {"sip_code": 503, "reason": "Service Unavailable", "local_error": None}
        if (
            self.user not in self.objects.get("endpoint", {})
            or not auth
            or auth.get("password") != self.app_password
        ):
            return {"sip_code": 401, "reason": "Unauthorized", "local_error": None}
        return None

    def first_error(self) -> dict[str, Any] | None:
        """The error the app shows before anyone touched it: a timeout for the transient scenario."""
        if self.scenario.transient:
            return {"sip_code": 408, "reason": "Request Timeout", "local_error": "timeout"}
        return self.failure()

    def fingerprint(self) -> str:
        return ha1(self.user, REALM, self.app_password)

    def log_lines(self) -> list[str]:
        error = self.first_error()
        lines = [*APP_BOOT_LOG, *self.scenario.log]
        if error and not self.scenario.log:
            lines.append(f"reg: sip:{self.user}@{DOMAIN}: {error['sip_code']} {error['reason']}")
        return lines

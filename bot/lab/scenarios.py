"""The lab's scenarios and the simulated world of one scenario (a PBX and an app backend).

A scenario is a small declarative fault: what is wrong on the PBX, in the app, on the path
between them or in the ticket. `Instance` builds one scenario's world from the simulators (an
Asterisk with its ARI and SIP ports, an app backend with the user's device) and decides whether
the app can register with that PBX, so a fix that connbot makes (a new password, the right port,
a created account) really makes the app register, and a fault outside connbot's reach keeps it
failing until a person repairs it (`Instance.repair`: what an administrator would do, such as
restarting Asterisk). Every scenario starts from a clean state, and `Lab.reset` restores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators import ari
from simulators.app_api import Backend, Device
from simulators.pbx import Pbx

REALM = "asterisk"
DOMAIN = "lab.example"
CONTEXT = "from-internal"
APP_BOOT_LOG = ("LabPhone 1.0 starting", "account acc-1: registering with the PBX")
TIMEOUT = {"sip_code": 408, "reason": "Request Timeout", "local_error": "timeout"}
REFUSED = {"sip_code": 503, "reason": "Connection refused", "local_error": "connection_refused"}
UNAVAILABLE = {"sip_code": 503, "reason": "Service Unavailable", "local_error": None}
UNAUTHORIZED = {"sip_code": 401, "reason": "Unauthorized", "local_error": None}
NOT_FOUND = {"sip_code": 404, "reason": "Not Found", "local_error": None}
FORBIDDEN = {"sip_code": 403, "reason": "Forbidden", "local_error": None}
SERVER_ERROR = {"sip_code": 500, "reason": "Internal Server Error", "local_error": None}


@dataclass(frozen=True)
class Scenario:
    """One preset: its fault, what a newcomer should see happen, and the extension its ticket names."""

    name: str
    title: str
    description: str
    expect: str
    user: str
    transient: bool = False  # the app failed once; a reconnect is all it needs
    wrong_port: bool = False  # the app registers to the wrong SIP port
    account: bool = True  # the user's PJSIP endpoint, auth and AOR exist
    auth_object: bool = True  # the auth object the endpoint names exists
    same_password: bool = True  # the app's password is the PBX's
    sip_answers: bool = True  # the PBX's SIP port answers (False: silent, packets lost on the way)
    stopped: tuple[str, ...] = ()  # Asterisk modules that are loaded but not running
    asterisk_running: bool = True  # False: Asterisk is stopped, its ARI and SIP ports refuse
    sip_stack_running: bool = True  # False: res_pjsip not running, ARI answers, SIP refuses
    database_up: bool = True  # False: the realtime database behind Asterisk is unreachable
    user_firewall: bool = False  # the user's own network drops the device's packets to the PBX
    other_device: bool = False  # another device holds the user's one registration (max_contacts 1, kept)
    real_user: str = ""  # the extension that exists, when the ticket names another (a typo)
    hidden: str = ""  # a cause nobody's check sees (only, perhaps, the client's log)
    log: tuple[str, ...] = ()  # what the app's log shows beyond its start

    @property
    def device_user(self) -> str:
        """The extension the PBX account and the app's device belong to."""
        return self.real_user or self.user


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
            "Closed at level 1 after one click (approve creating the account), once the app registers.",
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
            "An incident for the PBX: the network in front of it is broken (Repair, then Restored).",
            "2005",
            sip_answers=False,
        ),
        Scenario(
            "asterisk_module_down",
            "Asterisk module down",
            "Asterisk's SIP registrar module (res_pjsip_registrar.so) is loaded but not running.",
            "An incident for the PBX: its SIP stack is not running (Repair, then Restored on the incident).",
            "2006",
            stopped=(ari.REGISTRAR_MODULE,),
        ),
        Scenario(
            "database_down",
            "Database link down",
            "Asterisk's realtime database driver (res_config_pgsql.so) is not running; the user's "
            "objects are still answered from sorcery's memory cache, but registrations fail.",
            "An incident for the PBX: its realtime database is down (Repair, then Restored on the incident).",
            "2007",
            stopped=(ari.DB_LINK_MODULE,),
        ),
        Scenario(
            "logs_only",
            "Cause only in the client logs",
            "Every check passes, but the app's log shows its keep-alives failing.",
            "Level 2 reads the client logs and asks a person to act on them (Repair, then Fixed).",
            "2008",
            hidden="the device's connection drops between keep-alives",
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
        Scenario(
            "asterisk_stopped",
            "Asterisk stopped",
            "Asterisk is not running on the PBX: its ARI port and its SIP port refuse connections.",
            "An incident for the PBX: Asterisk is down; no account is touched (Repair, then Restored).",
            "2010",
            asterisk_running=False,
        ),
        Scenario(
            "sip_stack_down",
            "SIP stack down (res_pjsip)",
            "Asterisk runs and ARI answers, but res_pjsip.so is not running: the SIP port refuses.",
            "An incident: the SIP stack is down, the network is not blamed (Repair, then Restored).",
            "2011",
            sip_stack_running=False,
        ),
        Scenario(
            "realtime_db_down",
            "Realtime database down",
            "The database behind Asterisk is unreachable: account look-ups are slow and find nothing "
            "(404), writes are refused (403), res_config_pgsql.so reports down.",
            "An incident: the realtime database is down; no account is created (Repair, then Restored).",
            "2012",
            database_up=False,
        ),
        Scenario(
            "user_network_blocked",
            "User's network blocks the PBX",
            "A firewall on the user's side drops the app's packets: connbot's own probes of the PBX "
            "pass, the device's network test gets no answer.",
            "Level 2 names the user's network (device test failing, server path fine) and asks once.",
            "2013",
            user_firewall=True,
        ),
        Scenario(
            "missing_auth_object",
            "Account without its auth object",
            "The user's endpoint names an auth object that does not exist on the PBX.",
            "The account is found incomplete; creating only the missing auth object is offered for approval.",
            "2014",
            auth_object=False,
        ),
        Scenario(
            "contact_limit",
            "Another device holds the registration",
            "The user's account takes one device at a time (max_contacts 1, remove_existing no) and "
            "another device of the user is registered: the PBX answers the app 403 Forbidden.",
            "Level 1 names the registration that holds the account's one place and asks once; "
            "the other device signs out (Repair), and connbot checks the app before closing.",
            "2016",
            other_device=True,
        ),
        Scenario(
            "unknown_extension",
            "Ticket names an unknown extension",
            "The ticket names extension 2105, which neither the app backend nor the PBX knows "
            "(the user is 2015: a typo).",
            "connbot says plainly that nobody knows this user and asks before anything is created.",
            "2105",
            real_user="2015",
        ),
    )
}
DEFAULT = "password_mismatch"


def _accounts(users: list[str], password: str, scenario: Scenario) -> dict[str, dict[str, dict[str, str]]]:
    objects: dict[str, dict[str, dict[str, str]]] = {"endpoint": {}, "aor": {}, "auth": {}} if users else {}
    for user in users:
        for kind, found in _account(user, password, scenario).items():
            objects[kind].update(found)
    return {kind: found for kind, found in objects.items() if found}


def _account(user: str, password: str, scenario: Scenario) -> dict[str, dict[str, dict[str, str]]]:
    objects = {
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
        "aor": {
            user: {
                "max_contacts": "1",
                "remove_existing": "no" if scenario.other_device else "yes",
                "qualify_frequency": "0",
            }
        },
    }
    if scenario.auth_object:
        objects["auth"] = {
            user: {
                "auth_type": "userpass",
                "username": user,
                "password": password,
                "realm": "",
                "md5_cred": "",
            }
        }
    return objects


def storm_user(scenario: Scenario, n: int) -> str:
    """The extension of a scenario's n-th user (0: the scenario's own); others share its fault."""
    return scenario.device_user if n == 0 else f"{scenario.device_user}{n:03d}"


class Instance:
    """One scenario's world: `pbx` (Asterisk, ARI and SIP) and `backend` (the app's management API).

    `users` > 1 gives the PBX that many users, each with their account and their app's device, all
    sharing the scenario's fault (a storm of tickets); `device` is the scenario's own user's."""

    def __init__(
        self,
        scenario: Scenario,
        keys: dict[str, str],
        action_seconds: float,
        db_wait: float,
        ports: tuple[int, int] = (0, 0),
        users: int = 1,
    ):
        self.scenario = scenario
        self.keys = keys
        self.hidden = scenario.hidden  # a cause no check sees, until a person repairs it
        self.held = scenario.other_device  # another device holds each user's registration
        names, pw = [storm_user(scenario, n) for n in range(users)], keys["sip"]
        self.asterisk = ari.Asterisk(
            ari_password=keys["ari"],
            objects=_accounts(names, pw, scenario) if scenario.account else {},
            db_wait=db_wait,
            online=lambda resource: resource in self.registered() or (self.held and resource in names),
        )
        self.asterisk.stop_modules(*scenario.stopped)
        self.pbx = Pbx(self.asterisk, "200 OK" if scenario.sip_answers else None)
        self.pbx.ari.port, self.pbx.sip.port = ports
        self.pbx.start()
        if not scenario.database_up:
            self.asterisk.database_down()
        if not scenario.sip_stack_running:
            self.pbx.stop_sip_stack()
        if not scenario.asterisk_running:
            self.pbx.stop()
        self.devices = [
            Device(
                user=user,
                device_id=f"lab-{user}",
                server={
                    "host": self.pbx.host,
                    "port": self.pbx.sip_port + (1 if scenario.wrong_port else 0),
                    "transport": "udp",
                },
                password=pw if scenario.same_password else pw[::-1] + "x",
                domain=DOMAIN,
                realm=REALM,
                blocked=scenario.user_firewall,
                failure=self.failure,
            )
            for user in names
        ]
        self.device = self.devices[0]
        for device in self.devices:
            device.last_error = TIMEOUT if scenario.transient else self.failure(device)
            device.log = self._log(device)
        self.backend = Backend(token=keys["app"], devices=self.devices, action_seconds=action_seconds)

    def registered(self) -> set[str]:
        """The users whose app is registered now (their contacts online)."""
        return {d.user for d in self.devices if d.last_error is None}

    @property
    def user(self) -> str:
        return self.scenario.user

    @property
    def password(self) -> str:
        """The PBX's SIP password for the user, as the lab set it up."""
        return self.keys["sip"]

    @property
    def app_password(self) -> str:
        return self.device.password

    @property
    def objects(self) -> dict[str, dict[str, dict[str, str]]]:
        return self.asterisk.objects

    @property
    def last_error(self) -> dict[str, Any] | None:
        return self.device.last_error

    def failure(self, device: Device) -> dict[str, Any] | None:
        """Why the device's app cannot register now, as the app reports it (None: it can)."""
        pbx, asterisk = self.pbx, self.asterisk
        user = device.user
        if device.blocked:
            return TIMEOUT
        if not pbx.running or not pbx.sip.open:
            return REFUSED
        if (
            device.server != {"host": pbx.host, "port": pbx.sip_port, "transport": "udp"}
            or not pbx.sip.status
        ):
            return TIMEOUT
        if self.hidden:
            return TIMEOUT
        if not asterisk.db_up:  # no endpoint found: Asterisk challenges an unknown user as any other
            return UNAUTHORIZED
        if any(asterisk.modules.get(m) != "Running" for m in (ari.REGISTRAR_MODULE, ari.DB_LINK_MODULE)):
            return UNAVAILABLE
        objects = asterisk.objects
        endpoint = objects.get("endpoint", {}).get(user)
        if endpoint is None:
            return UNAUTHORIZED
        # PJSIP challenges only an endpoint that names an auth, and answers 500 when that auth object
        # cannot be found ("Couldn't find auth"); its registrar then looks for the AOR the request is
        # for among the endpoint's (404 when the endpoint names none of that name)
        if endpoint.get("auth"):
            auth = objects.get("auth", {}).get(endpoint["auth"])
            if auth is None:
                return SERVER_ERROR
            if auth.get("password") != device.password:
                return UNAUTHORIZED
        aor = objects.get("aor", {}).get(user)
        if user not in [a.strip() for a in endpoint.get("aors", "").split(",")] or aor is None:
            return NOT_FOUND
        if (
            self.held
            and aor.get("max_contacts") == "1"
            and aor.get("remove_existing", "").lower() not in ari.TRUE
        ):
            return FORBIDDEN  # the registrar keeps the other device's contact and refuses this one
        return None

    def repair(self) -> None:
        """What a person fixing the fault outside connbot's reach does: restart Asterisk with its modules
        and database, open the network path, lift the user's firewall, cure the hidden cause. The
        app registers again at its next reconnection; what connbot fixes (account, password, app
        settings) stays as it is."""
        self.pbx.sip.status = "200 OK"
        self.pbx.repair()
        for device in self.devices:
            device.blocked = False
        self.hidden = ""
        self.held = False  # the other device signs out

    def _log(self, device: Device) -> list[str]:
        error = device.last_error
        lines = [*APP_BOOT_LOG, *self.scenario.log]
        if error and not self.scenario.log:
            lines.append(f"reg: sip:{device.user}@{DOMAIN}: {error['sip_code']} {error['reason']}")
        return lines

    def stop(self) -> None:
        self.pbx.stop()

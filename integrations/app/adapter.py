"""Actions on the user's softphone through its backend's App Management API v1.

The device's capabilities decide which actions exist: one it cannot do raises `UnsupportedError`
and a person does that step instead.
"""

from __future__ import annotations

import socket
from typing import Any

from integrations import http
from integrations.app import models as m
from integrations.app.client import (
    ActionEnd,
    AppClient,
    AppForbiddenError,
    DeviceNotFoundError,
    DeviceOfflineError,
    from_settings,
    pick_account,
)
from integrations.app.settings import AppSettings
from integrations.base import (
    ActionInput,
    ActionResult,
    Adapter,
    NotConfiguredError,
    PermanentError,
    UnsupportedError,
    action,
    result,
)
from integrations.pbx.settings import SipSettings
from integrations.settings import Sections

STATES = {s.value for s in m.StatusOutcome} - {m.StatusOutcome.DEVICE_OFFLINE.value}
_RECHECKED = {
    m.ReconnectOutcome.RECONNECTED: m.RecheckOutcome.REGISTERED,
    m.ReconnectOutcome.STILL_FAILING: m.RecheckOutcome.STILL_FAILING,
    m.ReconnectOutcome.DEVICE_OFFLINE: m.RecheckOutcome.DEVICE_OFFLINE,
    m.ReconnectOutcome.TIMEOUT: m.RecheckOutcome.TIMEOUT,
}
# each registration state as the predicate of "The app on device X ..."
REGISTRATION = {
    m.StatusOutcome.REGISTERED: "is registered",
    m.StatusOutcome.REGISTERING: "is registering",
    m.StatusOutcome.UNREGISTERED: "is not registered",
    m.StatusOutcome.FAILED: "failed to register",
    m.StatusOutcome.UNKNOWN: "does not say whether it is registered",
}
# what each checked setting is called in the capabilities' `config_write` list
WRITE_KEYS = {
    "host": "server",
    "port": "port",
    "transport": "transport",
    "username": "username",
    "domain": "domain",
}


class AppAdapter(Adapter):
    name = "app"

    def __init__(self, client: AppClient, expected: SipSettings):
        self.client = client
        self.expected = expected

    @classmethod
    def configure(cls, sections: Sections) -> AppAdapter | None:
        settings = sections(AppSettings)
        if not settings.configured:
            return None
        return cls.from_settings(settings, sections(SipSettings))

    @classmethod
    def from_settings(
        cls, settings: AppSettings, expected: SipSettings, policy: http.RetryPolicy | None = None
    ) -> AppAdapter:
        return cls(from_settings(settings, policy), expected)

    # -- helpers
    def _device(self, inp: ActionInput) -> str:
        known = inp.facts.get("device_id")
        if known and not inp.user:
            return str(known)
        if not inp.user:
            raise PermanentError("the ticket names neither the user's extension nor a device")
        try:
            return str(self.client.find_device(inp.user, known)["device_id"])
        except DeviceNotFoundError as exc:
            raise exc.found(user_known_app=False) from None

    # -- actions
    @action(m.FindUserOutcome)
    def find_user(self, inp: ActionInput) -> ActionResult:
        """Who the ticket is about, looked up by the reporter's e-mail."""
        if not inp.reporter_email:
            raise PermanentError("the ticket names no reporter e-mail to look the user up by")
        users = self.client.users_by_email(inp.reporter_email)
        if len(users) != 1:
            why = "knows no user" if not users else f"knows {len(users)} users"
            return result(
                m.FindUserOutcome.NOT_FOUND,
                f"The app backend {why} with the e-mail {inp.reporter_email}.",
                email=inp.reporter_email,
                matches=len(users),
            ).found(user_known_app=False if not users else None)
        user = str(users[0]["user_ref"])
        res = result(
            m.FindUserOutcome.FOUND,
            f"The app backend knows {inp.reporter_email} as user {user}.",
            email=inp.reporter_email,
            user=user,
        )
        res.facts["user"] = user
        return res.found(user_known_app=True)

    @action(m.StatusOutcome)
    def get_status(self, inp: ActionInput) -> ActionResult:
        """The registration state of the user's app."""
        device = self._device(inp)
        try:
            status = self.client.status(device)
        except DeviceOfflineError:
            res = result(
                m.StatusOutcome.DEVICE_OFFLINE,
                f"The app on device {device} is offline: its backend cannot reach it.",
                device_id=device,
            )
            res.facts["device_id"] = device
            return res.found(registration="device_offline", user_known_app=True)
        account = pick_account(status.get("accounts"), inp.user)
        reg = account.get("registration") or {}
        state = str(reg.get("state", "unknown"))
        outcome = m.StatusOutcome(state) if state in STATES else m.StatusOutcome.UNKNOWN
        registrar = reg.get("registrar") or {}
        where = (
            f" with {registrar.get('host')}:{registrar.get('port')}/{registrar.get('transport')}"
            if registrar.get("host")
            else ""
        )
        err = (reg.get("last_error") or {}).get("message")
        summary = (
            f"The app on device {device} {REGISTRATION[outcome]}{where}"
            + (f"; last error: {err}" if err and outcome != m.StatusOutcome.REGISTERED else "")
            + "."
        )
        res = result(
            outcome,
            summary,
            device_id=device,
            account_id=account.get("account_id"),
            aor=account.get("aor"),
            state=state,
            since=reg.get("since"),
            registrar=registrar,
            last_error=reg.get("last_error"),
            attempts=reg.get("attempts"),
            app_state=status.get("app_state"),
            network=status.get("network"),
        )
        res.facts.update(device_id=device, account_id=account.get("account_id"))
        return res.found(
            registration=outcome.value,
            registration_error=error_class(reg.get("last_error")),
            user_known_app=True,
        )

    @action(m.ReconnectOutcome)
    def reconnect(self, inp: ActionInput) -> ActionResult:
        """Force the app to reconnect and wait for the result."""
        device = self._device(inp)
        account = inp.facts.get("account_id")
        end = self.client.reconnect(device, str(account) if account else None)
        if end is None:
            return result(
                m.ReconnectOutcome.DEVICE_OFFLINE,
                f"Could not reconnect: the app on device {device} is offline.",
                device_id=device,
            ).found(reconnect="device_offline")
        if end.registered:
            return result(
                m.ReconnectOutcome.RECONNECTED,
                "The app reconnected and registered"
                + (f" after {end.waited_s:.0f} s." if end.waited_s >= 0.5 else " within a second."),
                device_id=device,
                **end.evidence(),
            ).found(reconnect="registered", registration="registered", registration_error="none")
        if end.status in ("deadline", "timeout"):
            who = "connbot's deadline" if end.status == "deadline" else "the app's own timeout"
            return result(
                m.ReconnectOutcome.TIMEOUT,
                f"The reconnect did not finish within {who} ({end.waited_s:.0f} s).",
                device_id=device,
                **end.evidence(),
            ).found(reconnect="timeout")
        why = (
            end.error.get("message")
            or end.result.get("reason")
            or end.result.get("registration_state")
            or end.status
        )
        code = end.result.get("sip_code") or end.error.get("sip_code")
        return result(
            m.ReconnectOutcome.STILL_FAILING,
            f"connbot made the app reconnect; it still fails to register: {why}"
            + (f" (SIP {code})." if code else "."),
            device_id=device,
            **end.evidence(),
        ).found(reconnect="failing")

    @action(m.RecheckOutcome)
    def recheck(self, inp: ActionInput) -> ActionResult:
        """Check a fix: force a reconnection and say whether the app registers now."""
        done = self.reconnect(inp)
        outcome = _RECHECKED[m.ReconnectOutcome(done.outcome)]
        said = "registers now" if outcome == m.RecheckOutcome.REGISTERED else "does not register yet"
        return result(outcome, f"Checked again: the app {said}. {done.summary}", **done.evidence).found(
            recheck=done.facts["reconnect"]
        )

    @action(m.LastErrorOutcome)
    def get_last_error(self, inp: ActionInput) -> ActionResult:
        """The exact error the app reports about its connection."""
        device = self._device(inp)
        account = pick_account(self.client.status(device).get("accounts"), inp.user)
        err = (account.get("registration") or {}).get("last_error") or {}
        message = err.get("message") or " ".join(
            str(x) for x in (err.get("sip_code"), err.get("reason") or err.get("local_error")) if x
        )
        if not message:
            return result(
                m.LastErrorOutcome.NONE,
                f"The app on device {device} reports no connection error.",
                device_id=device,
            ).found(registration_error="none")
        res = result(
            m.LastErrorOutcome.FOUND,
            f"The app reports: {message}",
            device_id=device,
            sip_code=err.get("sip_code"),
            reason=err.get("reason"),
            local_error=err.get("local_error"),
            at=err.get("at"),
            message=message,
        )
        res.facts["error_message"] = message
        return res.found(registration_error=error_class(err))

    def _differences(self, account: dict[str, Any], user: str | None) -> dict[str, dict[str, Any]]:
        exp = self.expected
        server = account.get("server") or {}
        have = {
            "host": str(server.get("host") or "").lower(),
            "port": server.get("port"),
            "transport": str(server.get("transport") or "").lower(),
            "username": account.get("auth_username") or account.get("sip_username"),
            "domain": str(account.get("domain") or "").lower(),
        }
        want: dict[str, Any] = {"host": exp.sip_host, "port": exp.sip_port, "transport": exp.sip_transport}
        if user:
            want["username"] = user
        if exp.sip_domain:
            want["domain"] = exp.sip_domain
        return {k: {"app": have[k], "expected": v} for k, v in want.items() if have[k] != v}

    @action(m.ConfigOutcome)
    def check_config(self, inp: ActionInput) -> ActionResult:
        """Compare the app's SIP settings with what the PBX expects."""
        if not self.expected.sip_host:
            raise NotConfiguredError(
                "CONNBOT_SIP_HOST is not set: connbot does not know which server the app should use"
            )
        device = self._device(inp)
        self.client.require(device, "config_read", "read its configuration")
        account = pick_account(self.client.config(device).get("accounts"), inp.user)
        diffs = self._differences(account, inp.user)
        server = account.get("server") or {}
        evidence = {
            "device_id": device,
            "app_server": server,
            "app_domain": account.get("domain"),
            "expected": {
                "host": self.expected.sip_host,
                "port": self.expected.sip_port,
                "transport": self.expected.sip_transport,
                "domain": self.expected.sip_domain or None,
            },
            "differences": diffs,
        }
        host = str(server.get("host") or "")
        dns_error = _resolve(host) if host else "no host configured"
        if dns_error and ("host" in diffs or host == self.expected.sip_host):
            return result(
                m.ConfigOutcome.UNRESOLVABLE_HOST,
                f"The app's server host {host!r} does not resolve ({dns_error}).",
                dns_error=dns_error,
                **evidence,
            ).found(app_config="unresolvable_host")
        for key in ("host", "port", "transport", "username", "domain"):
            if key in diffs:
                d = diffs[key]
                return result(
                    m.ConfigOutcome(f"wrong_{key}"),
                    f"The app uses {key} {d['app']!r} but the PBX expects {d['expected']!r}.",
                    **evidence,
                ).found(app_config=f"wrong_{key}")
        return result(
            m.ConfigOutcome.OK,
            "The app's SIP settings match the PBX "
            f"({self.expected.sip_host}:{self.expected.sip_port}/{self.expected.sip_transport}).",
            **evidence,
        ).found(app_config="ok")

    @action(m.FixConfigOutcome)
    def fix_config(self, inp: ActionInput) -> ActionResult:
        """Set the app's SIP settings to what the PBX expects and retest."""
        if not self.expected.sip_host:
            raise NotConfiguredError(
                "CONNBOT_SIP_HOST is not set: connbot does not know which server the app should use"
            )
        device = self._device(inp)
        caps = self.client.require(device, "config_read", "read its configuration")
        account = pick_account(self.client.config(device).get("accounts"), inp.user)
        diffs = self._differences(account, inp.user)
        writable = set(caps.get("config_write") or [])
        cannot = sorted(WRITE_KEYS[k] for k in diffs if WRITE_KEYS[k] not in writable)
        if cannot:
            raise UnsupportedError(f"device {device} does not let its backend change {', '.join(cannot)}")
        patch: dict[str, Any] = {"account_id": account.get("account_id"), "reregister": True}
        if diffs.keys() & {"host", "port", "transport"}:
            patch["server"] = {
                "host": self.expected.sip_host,
                "port": self.expected.sip_port,
                "transport": self.expected.sip_transport,
            }
        if "domain" in diffs:
            patch["domain"] = self.expected.sip_domain
        if "username" in diffs:
            patch["auth_username"] = patch["sip_username"] = inp.user
        changed = {k: d["expected"] for k, d in diffs.items()}
        try:
            answer = self.client.patch_config(device, patch)
        except AppForbiddenError as exc:
            return result(
                m.FixConfigOutcome.FORBIDDEN,
                f"The app backend refused to change the configuration ({exc.status}).",
                device_id=device,
                changes=changed,
                error=str(exc),
            )
        action_id = answer.get("action_id")
        end = (
            self.client.wait(str(action_id))
            if action_id
            else self.client.reconnect(device, account.get("account_id"))
        )
        evidence = {
            "device_id": device,
            "changes": changed,
            **(end.evidence() if end else {"action_status": "device_offline"}),
        }
        what = ", ".join(f"{k} {v}" for k, v in changed.items()) or "nothing needed changing"
        if end is not None and end.registered:
            return result(
                m.FixConfigOutcome.FIXED_CONNECTED,
                f"Fixed the app's configuration ({what}); it registers now.",
                **evidence,
            )
        return result(
            m.FixConfigOutcome.FIXED_STILL_FAILING,
            f"Fixed the app's configuration ({what}) but it still does not register.",
            **evidence,
        )

    @action(m.NetworkTestOutcome)
    def test_network(self, inp: ActionInput) -> ActionResult:
        """The device's own network test towards its server (DNS, TCP, TLS, SIP OPTIONS)."""
        device = self._device(inp)
        out = m.NetworkTestOutcome
        if not self.client.capabilities(device).get("network_test"):
            return result(
                out.UNSUPPORTED,
                f"The app on device {device} cannot run a network test; only connbot's own probes count.",
                device_id=device,
            ).found(device_path="unsupported")
        account = inp.facts.get("account_id")
        end = self.client.network_test(device, str(account) if account else None)
        if end is None:
            return result(
                out.DEVICE_OFFLINE,
                f"No network test: the app on device {device} is offline.",
                device_id=device,
            ).found(registration="device_offline")
        if end.status != "succeeded":
            why = end.error.get("message") or end.status
            return result(
                out.NO_RESULT,
                f"The device's network test gave no result ({why}).",
                device_id=device,
                **end.evidence(),
            )
        outcome, summary = network_verdict(end)
        return result(outcome, summary, device_id=device, **end.evidence()).found(device_path=outcome.value)


def error_class(err: Any) -> str:
    """The class of a registration's `last_error` (the contract's sip_code / local_error)."""
    if not isinstance(err, dict) or not (err.get("sip_code") or err.get("local_error")):
        return "none"
    local = {
        "dns": "dns",
        "timeout": "timeout",
        "connection_refused": "refused",
        "tls": "tls",
        "network_down": "network_down",
    }
    if err.get("local_error") in local:
        return local[str(err["local_error"])]
    code = err.get("sip_code")
    return {
        401: "auth",
        407: "auth",
        403: "forbidden",
        404: "not_found",
        408: "timeout",
        503: "unavailable",
    }.get(code if isinstance(code, int) else 0, "other")


def network_verdict(end: ActionEnd) -> tuple[m.NetworkTestOutcome, str]:
    """The first failing layer of a device's network test, and one sentence with its numbers."""
    out, res = m.NetworkTestOutcome, end.result
    dns: dict[str, Any] = _dict(res.get("dns"))
    host = str(dns.get("host") or "the server")[:200]
    if dns.get("error"):
        return (
            out.DNS_FAILURE,
            f"From the user's device, {host} does not resolve ({str(dns['error'])[:200]}).",
        )
    for tcp in res.get("tcp") or []:
        if isinstance(tcp, dict) and not tcp.get("ok"):
            port = tcp.get("port")
            if tcp.get("error") == "connection_refused":
                return out.TCP_REFUSED, _refused(host, f"on TCP port {port}")
            if tcp.get("error") == "timeout":
                return out.TCP_TIMEOUT, (
                    f"From the user's device, TCP port {port} of {host} does not answer "
                    "(connection timed out)."
                )
            return out.UNREACHABLE, f"From the user's device, {host} cannot be reached on TCP port {port}."
    tls: dict[str, Any] = _dict(res.get("tls"))
    if tls and not tls.get("ok"):
        err = str(tls.get("verify_error") or "").lower()
        kind = (
            out.TLS_EXPIRED
            if "expired" in err
            else out.TLS_HOSTNAME_MISMATCH
            if "hostname" in err or "mismatch" in err
            else out.TLS_UNTRUSTED
            if "self" in err or "issuer" in err or "untrusted" in err
            else out.TLS_HANDSHAKE_FAILED
        )
        return kind, f"From the user's device, TLS to {host} fails: {err[:200] or 'handshake failed'}."
    sip: dict[str, Any] = _dict(res.get("sip_options"))
    if not sip.get("status_line"):
        if sip.get("error") == "connection_refused":
            kind = out.UNREACHABLE if sip.get("transport") == "udp" else out.TCP_REFUSED
            return kind, _refused(host, f"for SIP over {str(sip.get('transport')).upper()}")
        return out.SIP_NO_RESPONSE, f"From the user's device, {host} does not answer SIP OPTIONS."
    rtt = _dict(sip.get("rtt_ms"))
    return (
        out.OK,
        f"From the user's device, {host} answers SIP ({str(sip['status_line'])[:60]}) in "
        f"{rtt.get('avg', '?')} ms, {sip.get('loss_pct', '?')} % loss.",
    )


def _refused(host: str, where: str) -> str:
    """A refusal is an answer from the host's address, not silence: TCP refused the connection, or UDP
    got ICMP port unreachable."""
    return (
        f"From the user's device, {host} refuses connections {where}: nothing listens there, or a "
        "firewall rejects them."
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _resolve(host: str) -> str | None:
    """None when `host` resolves, else the resolver's error."""
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as exc:
        return str(exc)
    return None

"""Actions on the Asterisk PBX (the PrivateServer) over ARI, and its realtime database.

Passwords never leave `AriClient` in clear: credentials are compared as HA1 digests, and a
password that connbot generates is sent to Asterisk and to the app only, never into a result.
The app client is optional; without it the password actions cannot see or set the app's side.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from pydantic import SecretStr

from integrations import http
from integrations.app import client as app_client
from integrations.app.client import AppClient, AppForbiddenError
from integrations.app.settings import AppSettings
from integrations.base import (
    ActionInput,
    ActionResult,
    Adapter,
    NotConfiguredError,
    PermanentError,
    TransientError,
    action,
    result,
)
from integrations.pbx import models as m
from integrations.pbx.client import (
    AriAuthError,
    AriClient,
    AriForbiddenError,
    InvalidFieldsError,
    ReadOnlyBackendError,
    WriteDeniedError,
)
from integrations.pbx.db import RealtimeDb
from integrations.pbx.settings import PbxSettings
from integrations.settings import load

SIP_MODULES = ("res_pjsip.so", "res_pjsip_registrar.so", "chan_pjsip.so")
DB_MODULES = ("res_odbc.so", "res_config_odbc.so", "res_config_pgsql.so")
REALTIME_MODULES = ("res_config_odbc.so", "res_config_pgsql.so")


def new_password() -> SecretStr:
    """A random SIP password: 24 URL-safe characters (about 144 bits)."""
    return SecretStr(secrets.token_urlsafe(18))


def _ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class PbxAdapter(Adapter):
    name = "pbx"

    def __init__(
        self,
        settings: PbxSettings,
        ari: AriClient,
        app: AppClient | None = None,
        db: RealtimeDb | None = None,
    ):
        self.settings = settings
        self.ari = ari
        self.app = app
        self.db = db

    @classmethod
    def configure(cls) -> PbxAdapter | None:
        settings = load(PbxSettings)
        if not settings.configured:
            return None
        app_settings = load(AppSettings)
        return cls.from_settings(settings, app_settings if app_settings.configured else None)

    @classmethod
    def from_settings(
        cls, settings: PbxSettings, app: AppSettings | None = None, policy: http.RetryPolicy | None = None
    ) -> PbxAdapter:
        """One adapter for one PBX (and optionally the app backend of its users)."""
        settings.require_credentials()
        assert settings.ari_password is not None  # checked by require_credentials
        ari = AriClient(
            settings.ari_url,
            settings.ari_username,
            settings.ari_password,
            policy=policy or http.RetryPolicy(read_timeout=settings.ari_timeout),
            verify=settings.verify,
        )
        db = RealtimeDb(settings.pbx_db_url, settings.pbx_db_timeout) if settings.pbx_db_url else None
        return cls(settings, ari, app_client.from_settings(app, policy) if app else None, db)

    def _user(self, inp: ActionInput) -> str:
        if not inp.user:
            raise PermanentError("the ticket names no PBX user (extension)")
        return inp.user

    # -- accounts
    @action(m.AccountOutcome)
    def get_account(self, inp: ActionInput) -> ActionResult:
        """Whether the user's endpoint, auth and AOR exist."""
        user = self._user(inp)
        endpoint = self.ari.get_object("endpoint", user)
        if endpoint is None:
            return result(
                m.AccountOutcome.MISSING,
                f"Account {user} does not exist on the PBX (no PJSIP endpoint {user}).",
                endpoint=user,
            )
        auths, aors = _ids(endpoint.get("auth")), _ids(endpoint.get("aors"))
        missing = [f"auth {a}" for a in auths if self.ari.get_object("auth", a) is None]
        missing += [f"aor {a}" for a in aors if self.ari.get_object("aor", a) is None]
        missing += [f"{kind} (none referenced)" for kind, ids in (("auth", auths), ("aor", aors)) if not ids]
        evidence = {
            "endpoint": user,
            "auth": auths,
            "aors": aors,
            "context": endpoint.get("context"),
            "transport": endpoint.get("transport"),
            "missing": missing,
        }
        if missing:
            return result(
                m.AccountOutcome.INCOMPLETE,
                f"Account {user} is incomplete on the PBX: its endpoint lacks {', '.join(missing)}.",
                **evidence,
            )
        return result(
            m.AccountOutcome.EXISTS,
            f"Account {user} exists on the PBX (endpoint, auth {','.join(auths)}, AOR {','.join(aors)}).",
            **evidence,
        )

    @action(m.CreateAccountOutcome, changes_account=True)
    def create_account(self, inp: ActionInput) -> ActionResult:
        """Create the user's auth, AOR and endpoint, in that order."""
        user = self._user(inp)
        if self.ari.get_object("endpoint", user) is not None:
            raise PermanentError(f"account {user} already exists on the PBX; not overwriting it")
        s = self.settings
        password = new_password()
        auth = {"auth_type": "userpass", "username": user, "password": password.get_secret_value()}
        if s.pbx_realm != "asterisk":
            auth["realm"] = s.pbx_realm
        endpoint = {"auth": user, "aors": user, "context": s.pbx_context, "allow": s.pbx_allow}
        if s.pbx_transport:
            endpoint["transport"] = s.pbx_transport
        steps: list[tuple[str, dict[str, str]]] = [
            ("auth", auth),
            ("aor", {"max_contacts": str(s.pbx_max_contacts), "remove_existing": "yes"}),
            ("endpoint", endpoint),
        ]
        created: list[str] = []
        for kind, fields in steps:
            try:
                self.ari.put_object(kind, user, fields)
            except WriteDeniedError as exc:
                return result(
                    m.CreateAccountOutcome.WRITE_DENIED,
                    f"Cannot create account {user}: connbot's ARI user is read-only (403 Write access denied).",
                    created=created,
                    failed_at=kind,
                    error=str(exc),
                )
            except ReadOnlyBackendError as exc:
                return result(
                    m.CreateAccountOutcome.FORBIDDEN_READONLY_BACKEND,
                    f"Cannot create account {user}: the PBX keeps accounts in a read-only backend (e.g. pjsip.conf); create it by hand.",
                    created=created,
                    failed_at=kind,
                    error=str(exc),
                )
            except InvalidFieldsError as exc:
                return result(
                    m.CreateAccountOutcome.INVALID_FIELDS,
                    f"Asterisk rejected the {kind} of account {user} (400); check CONNBOT_PBX_* settings.",
                    created=created,
                    failed_at=kind,
                    error=str(exc),
                )
            created.append(kind)
        pushed = self._push_password(inp, password) if self.app else "no app backend configured"
        summary = f"Created account {user} on the PBX (auth, AOR, endpoint; context {s.pbx_context})"
        summary += (
            "; the app got the new password."
            if pushed is None
            else f"; the app was NOT given the password ({pushed}): reset it to connect."
        )
        return result(
            m.CreateAccountOutcome.CREATED,
            summary,
            created=created,
            context=s.pbx_context,
            transport=s.pbx_transport or None,
            allow=s.pbx_allow,
            app_password_set=pushed is None,
        )

    def _push_password(self, inp: ActionInput, password: SecretStr) -> str | None:
        """Give the app the password (no re-register); None on success, else why not."""
        assert self.app is not None
        try:
            device = self.app.find_device(self._user(inp), inp.facts.get("device_id"))["device_id"]
            caps = self.app.capabilities(device)
            if "password" not in (caps.get("config_write") or []):
                return "the device does not let its backend set the password"
            account = app_client.pick_account(self.app.config(device).get("accounts"), inp.user)
            self.app.patch_config(
                device,
                {
                    "account_id": account.get("account_id"),
                    "password": password.get_secret_value(),
                    "reregister": False,
                },
            )
        except (PermanentError, TransientError) as exc:
            return f"app backend: {exc}"
        return None

    # -- credentials
    def _app_account(self, inp: ActionInput) -> tuple[str, dict[str, Any]]:
        assert self.app is not None
        device = str(self.app.find_device(self._user(inp), inp.facts.get("device_id"))["device_id"])
        self.app.require(device, "config_read", "read its configuration")
        return device, app_client.pick_account(self.app.config(device).get("accounts"), inp.user)

    @action(m.CredentialsOutcome)
    def compare_credentials(self, inp: ActionInput) -> ActionResult:
        """Compare the PBX's credentials with the app's fingerprint (HA1)."""
        user = self._user(inp)
        unknown = m.CredentialsOutcome.UNKNOWN
        if self.app is None:
            return result(
                unknown,
                "Cannot compare passwords: no app backend is configured (CONNBOT_APP_API_URL).",
                endpoint=user,
            )
        endpoint = self.ari.get_object("endpoint", user)
        auths = _ids(endpoint.get("auth")) if endpoint else []
        if not auths:
            return result(
                unknown,
                f"Cannot compare passwords: account {user} has no endpoint or auth on the PBX.",
                endpoint=user,
            )
        digest = self.ari.get_digest(auths[0], self.settings.pbx_realm)
        if digest is None or digest.ha1 is None:
            return result(
                unknown,
                f"Cannot compare passwords: auth {auths[0]} is missing or has no password on the PBX.",
                endpoint=user,
                auth=auths[0],
            )
        device, account = self._app_account(inp)
        fp = account.get("credential_fingerprint") or {}
        app_user = account.get("auth_username") or account.get("sip_username")
        evidence = {
            "endpoint": user,
            "auth": digest.auth_id,
            "device_id": device,
            "pbx_username": digest.username,
            "pbx_realm": digest.realm,
            "app_username": app_user,
            "app_realm": fp.get("realm"),
            "fingerprint_algorithm": fp.get("algorithm"),
        }
        if fp.get("algorithm") != "md5-ha1" or not fp.get("value"):
            return result(
                unknown,
                "Cannot compare passwords: the app gives no MD5-HA1 credential fingerprint.",
                **evidence,
            )
        if app_user != digest.username:
            return result(
                m.CredentialsOutcome.USERNAME_MISMATCH,
                f"The app authenticates as {app_user!r} but the PBX expects {digest.username!r}.",
                **evidence,
            )
        if fp.get("realm") != digest.realm:
            return result(
                m.CredentialsOutcome.REALM_MISMATCH,
                f"The app's credentials are for realm {fp.get('realm')!r} but the PBX uses {digest.realm!r}.",
                **evidence,
            )
        if not hmac.compare_digest(str(fp["value"]).lower(), digest.ha1):
            return result(
                m.CredentialsOutcome.PASSWORD_MISMATCH,
                f"The app's password for {user} differs from the PBX's (HA1 digests differ).",
                **evidence,
            )
        return result(
            m.CredentialsOutcome.MATCH,
            f"The app's username, realm and password for {user} match the PBX's.",
            **evidence,
        )

    @action(m.ResetPasswordOutcome, changes_account=True)
    def reset_password(self, inp: ActionInput) -> ActionResult:
        """Make the app's and the PBX's passwords agree, then reconnect."""
        user = self._user(inp)
        if self.app is None:
            raise NotConfiguredError(
                "pbx.reset_password needs the app backend (CONNBOT_APP_API_URL) to give the app the new password"
            )
        device, account = self._app_account(inp)
        caps = self.app.capabilities(device)
        if "password" not in (caps.get("config_write") or []):
            return result(
                m.ResetPasswordOutcome.FORBIDDEN,
                f"The app on device {device} does not let its backend set the password; nothing was changed.",
                device_id=device,
                pbx_updated=False,
                app_updated=False,
            )
        endpoint = self.ari.get_object("endpoint", user)
        auths = _ids(endpoint.get("auth")) if endpoint else []
        if not auths:
            raise PermanentError(f"account {user} has no endpoint or auth on the PBX")
        password = new_password()
        try:
            self.ari.put_object("auth", auths[0], {"password": password.get_secret_value()})
        except (WriteDeniedError, ReadOnlyBackendError) as exc:
            why = (
                "connbot's ARI user is read-only"
                if isinstance(exc, WriteDeniedError)
                else "the account backend is read-only"
            )
            return result(
                m.ResetPasswordOutcome.FORBIDDEN,
                f"The PBX refused the password change (403: {why}); nothing was changed.",
                device_id=device,
                pbx_updated=False,
                app_updated=False,
                error=str(exc),
            )
        try:
            answer = self.app.patch_config(
                device,
                {
                    "account_id": account.get("account_id"),
                    "password": password.get_secret_value(),
                    "reregister": True,
                },
            )
        except AppForbiddenError as exc:
            return result(
                m.ResetPasswordOutcome.FORBIDDEN,
                f"Set a new password on the PBX, but the app backend refused it ({exc.status}): the app must be given a new password by hand.",
                device_id=device,
                pbx_updated=True,
                app_updated=False,
                error=str(exc),
            )
        action_id = answer.get("action_id")
        end = (
            self.app.wait(str(action_id))
            if action_id
            else self.app.reconnect(device, account.get("account_id"))
        )
        evidence = {
            "device_id": device,
            "auth": auths[0],
            "pbx_updated": True,
            "app_updated": True,
            **(end.evidence() if end else {"action_status": "device_offline"}),
        }
        if end is not None and end.registered:
            return result(
                m.ResetPasswordOutcome.UPDATED_CONNECTED,
                f"Set a new password for {user} on the PBX and in the app; the app registers now.",
                **evidence,
            )
        return result(
            m.ResetPasswordOutcome.UPDATED_STILL_FAILING,
            f"Set a new password for {user} on the PBX and in the app, but the app still does not register.",
            **evidence,
        )

    # -- services
    @action(m.HealthOutcome)
    def health(self, inp: ActionInput) -> ActionResult:
        """Asterisk answers and its SIP modules run."""
        try:
            ping = self.ari.ping()
            info = self.ari.info("status", "system")
        except (AriAuthError, AriForbiddenError) as exc:
            return result(
                m.HealthOutcome.AUTH_ERROR,
                f"Asterisk refused connbot on ARI ({exc.status}): check the ARI user, password and ACL.",
                error=str(exc),
            )
        except TransientError as exc:
            return result(m.HealthOutcome.DOWN, f"Asterisk does not answer on ARI: {exc}", error=str(exc))
        modules = {name: self.ari.module(name) for name in SIP_MODULES}
        states = {name: (mod or {}).get("status", "missing") for name, mod in modules.items()}
        evidence = {
            "asterisk_id": ping.get("asterisk_id"),
            "version": (info.get("system") or {}).get("version"),
            "startup_time": (info.get("status") or {}).get("startup_time"),
            "last_reload_time": (info.get("status") or {}).get("last_reload_time"),
            "modules": states,
        }
        not_loaded = [n for n, st in states.items() if st == "missing"]
        not_running = [n for n, st in states.items() if st not in ("missing", "Running")]
        if not_running:
            return result(
                m.HealthOutcome.MODULE_NOT_RUNNING,
                f"Asterisk answers but {', '.join(not_running)} is not running.",
                **evidence,
            )
        if not_loaded:
            return result(
                m.HealthOutcome.MODULE_MISSING,
                f"Asterisk answers but {', '.join(not_loaded)} is not loaded.",
                **evidence,
            )
        return result(
            m.HealthOutcome.UP,
            f"Asterisk {evidence['version'] or ''} answers and its SIP modules run.".replace("  ", " "),
            **evidence,
        )

    @action(m.DatabaseOutcome)
    def check_database(self, inp: ActionInput) -> ActionResult:
        """The realtime database answers, quickly, and Asterisk's link to it is up."""
        modules = {name: (self.ari.module(name) or {}).get("status", "missing") for name in DB_MODULES}
        realtime = {n: st for n, st in modules.items() if n in REALTIME_MODULES and st != "missing"}
        evidence: dict[str, Any] = {"modules": modules}
        out = m.DatabaseOutcome
        if self.db is not None:
            probe = self.db.probe()
            evidence.update(
                database=probe.target,
                latency_ms=probe.latency_ms,
                tables=probe.tables,
                threshold_ms=self.settings.pbx_db_slow_ms,
            )
            if not probe.reachable:
                return result(
                    out.DB_UNREACHABLE,
                    f"The realtime database does not answer: {probe.error}",
                    error=probe.error,
                    **evidence,
                )
            if probe.missing_tables:
                return result(
                    out.DB_SCHEMA_MISSING,
                    f"The realtime database lacks the PJSIP tables {', '.join(probe.missing_tables)}.",
                    **evidence,
                )
            if probe.latency_ms is not None and probe.latency_ms > self.settings.pbx_db_slow_ms:
                return result(
                    out.DB_SLOW,
                    f"The realtime database is slow: {probe.latency_ms:.0f} ms (threshold {self.settings.pbx_db_slow_ms:.0f} ms).",
                    **evidence,
                )
            if not realtime:
                return result(
                    out.MODULE_NOT_LOADED,
                    "The database answers but Asterisk has no realtime driver loaded (res_config_odbc.so / res_config_pgsql.so).",
                    **evidence,
                )
        elif not realtime:
            return result(
                out.NO_DATABASE,
                "Asterisk uses no realtime database (no realtime driver loaded, CONNBOT_PBX_DB_URL not set).",
                **evidence,
            )
        stopped = [n for n, st in modules.items() if st not in ("missing", "Running")]
        if stopped:
            return result(
                out.ASTERISK_DB_LINK_DOWN,
                f"Asterisk's database link is down: {', '.join(stopped)} is not running.",
                **evidence,
            )
        if inp.user:
            try:
                self.ari.get_object("endpoint", inp.user)
            except TransientError as exc:
                return result(
                    out.ASTERISK_DB_LINK_DOWN,
                    f"Asterisk cannot read accounts from its database: {exc}",
                    error=str(exc),
                    **evidence,
                )
            evidence["lookup_through_asterisk"] = "ok"
        where = f"answers in {evidence['latency_ms']:.0f} ms and " if self.db is not None else ""
        return result(
            out.DB_OK,
            f"The realtime database {where}Asterisk's link to it ({', '.join(realtime)}) is up.",
            **evidence,
        )

"""Actions on the Asterisk PBX (the PrivateServer) over ARI, and its realtime database.

Passwords never leave `AriClient` in clear: credentials are compared as HA1 digests, and a
password that connbot generates is sent to Asterisk and to the app only, never into a result.
The app client is optional; without it the password actions cannot see or set the app's side.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from integrations import http
from integrations.app import client as app_client
from integrations.app.client import AppClient, AppForbiddenError
from integrations.app.settings import AppSettings
from integrations.base import (
    ActionInput,
    ActionResult,
    Adapter,
    AdapterError,
    NotConfiguredError,
    PermanentError,
    RefusedError,
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
from integrations.settings import Sections

SIP_MODULES = ("res_pjsip.so", "res_pjsip_registrar.so", "chan_pjsip.so")
DB_MODULES = ("res_odbc.so", "res_config_odbc.so", "res_config_pgsql.so")
REALTIME_MODULES = ("res_config_odbc.so", "res_config_pgsql.so")
TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})  # what Asterisk's ast_true takes as on


def new_password() -> SecretStr:
    """A random SIP password: 24 URL-safe characters (about 144 bits)."""
    return SecretStr(secrets.token_urlsafe(18))


def _ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return f"{', '.join(items[:-1])} and {items[-1]}" if len(items) > 1 else items[0]


def _are_not(names: list[str], state: str) -> str:
    """'a is not running', 'a and b are not running'."""
    return f"{_and(names)} {'are' if len(names) > 1 else 'is'} not {state}"


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
    def configure(cls, sections: Sections) -> PbxAdapter | None:
        settings = sections(PbxSettings)
        if not settings.configured:
            return None
        app_settings = sections(AppSettings)
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

    @property
    def pbx(self) -> str:
        return urlsplit(self.settings.ari_url).hostname or self.settings.ari_url

    @contextlib.contextmanager
    def _ari(self) -> Iterator[None]:
        """A failure talking to ARI carries what it says about ARI: refused, timeout, unauthorised."""
        try:
            yield
        except AdapterError as exc:
            if isinstance(exc, RefusedError):
                ari = "refused"
            elif isinstance(exc, (AriAuthError, AriForbiddenError)):
                ari = "unauthorised"
            elif isinstance(exc, TransientError) and exc.status is None:
                ari = "timeout"
            else:
                ari = "error"
            raise exc.found(pbx=self.pbx, ari=ari) from None

    def _lookup(self, kind: str, oid: str, slowest: list[float]) -> dict[str, str] | None:
        """An object by ARI, its time added to `slowest` (the look-ups' times in ms)."""
        start = time.perf_counter()
        try:
            return self.ari.get_object(kind, oid)
        finally:
            slowest.append(round((time.perf_counter() - start) * 1000, 1))

    # -- accounts
    @action(m.AccountOutcome)
    def get_account(self, inp: ActionInput) -> ActionResult:
        """Whether the user's endpoint, auth and AOR exist, and whether a registration holds an AOR that
        takes one."""
        user = self._user(inp)
        times: list[float] = []
        with self._ari():
            endpoint = self._lookup("endpoint", user, times)
            auths, aors = _ids((endpoint or {}).get("auth")), _ids((endpoint or {}).get("aors"))
            missing = [f"auth {a}" for a in auths if self._lookup("auth", a, times) is None]
            found_aors = {a: self._lookup("aor", a, times) for a in aors}
            missing += [f"aor {a}" for a, aor in found_aors.items() if aor is None]
        seen = {
            "pbx": self.pbx,
            "ari": "reachable",
            "config_lookup": "found" if endpoint is not None else "not_found",
            "config_lookup_status": 200 if endpoint is not None else 404,
            "config_lookup_ms": max(times),
            "user_known_pbx": endpoint is not None,
        }
        if endpoint is None:
            return result(
                m.AccountOutcome.MISSING,
                f"Looking up account {user}, the PBX answered 404 after {max(times):.0f} ms: no PJSIP "
                f"endpoint {user} was found.",
                endpoint=user,
                lookup_ms=max(times),
            ).found(
                **seen, account="missing", account_missing=[f"auth {user}", f"aor {user}", f"endpoint {user}"]
            )
        unset = [kind for kind, ids in (("auth", auths), ("AOR", aors)) if not ids]
        evidence = {
            "endpoint": user,
            "auth": auths,
            "aors": aors,
            "context": endpoint.get("context"),
            "transport": endpoint.get("transport"),
            "missing": missing,
            "unset": unset,
        }
        if missing or unset:
            lacks = [f"names no {kind}" for kind in unset] + ([f"lacks {_and(missing)}"] if missing else [])
            return result(
                m.AccountOutcome.INCOMPLETE,
                f"Account {user} is incomplete on the PBX: its endpoint {_and(lacks)}.",
                **evidence,
            ).found(
                **seen,
                account="incomplete",
                **({"account_missing": missing} if missing else {}),
                **({"endpoint_unset": unset} if unset else {}),
            )
        summary = f"Account {user} exists on the PBX (endpoint, auth {','.join(auths)}, AOR {','.join(aors)})"
        aor = found_aors.get(user) or (found_aors[aors[0]] if len(aors) == 1 else None)
        if aor is None or aor.get("max_contacts") != "1" or aor.get("remove_existing", "").lower() in TRUE:
            return result(m.AccountOutcome.EXISTS, summary + ".", **evidence).found(**seen, account="exists")
        state, now, found = self._one_place(user, aor)
        summary += f"; its AOR takes one device at a time (max_contacts 1, remove_existing off) and {now}"
        return result(
            m.AccountOutcome.EXISTS, summary, **evidence, max_contacts=1, endpoint_state=state
        ).found(**seen, account="exists", **found)

    def _one_place(self, user: str, aor: dict[str, str]) -> tuple[str | None, str, dict[str, bool]]:
        """Of an AOR that takes one contact and keeps it: the endpoint's state in ARI, whether a
        registration holds the place (in words), and `contacts_full` where ARI can tell.

        While one is registered, the registrar refuses the app's own with 403 (another device, or the
        app's earlier registration from another address until it expires). PJSIP calls an endpoint
        online when a contact of its AORs is available: with qualify on, only one that answers
        OPTIONS, so offline then does not mean that none holds the place."""
        with self._ari():
            state = self.ari.endpoint_state(user)
        if state == "online":
            return state, "one is registered now: the PBX refuses any other (403).", {"contacts_full": True}
        qualify = aor.get("qualify_frequency", "0") not in ("", "0")
        if state == "offline" and not qualify:
            return state, "none is registered now.", {"contacts_full": False}
        said = f"ARI gives the endpoint's state as {state or 'unknown'}"
        if qualify:
            said += ": with qualify on, a registration that does not answer may still hold the place"
        return state, said + ".", {}

    @action(m.CreateAccountOutcome, changes_account=True)
    def create_account(self, inp: ActionInput) -> ActionResult:
        """Create the user's auth, AOR and endpoint, in that order; of an incomplete account, only the
        objects its endpoint names but that do not exist."""
        user = self._user(inp)
        s = self.settings
        password = new_password()
        auth = {"auth_type": "userpass", "username": user, "password": password.get_secret_value()}
        if s.pbx_realm != "asterisk":
            auth["realm"] = s.pbx_realm
        aor = {"max_contacts": str(s.pbx_max_contacts), "remove_existing": "yes"}
        with self._ari():
            existing = self.ari.get_object("endpoint", user)
            if existing is None:
                endpoint = {"auth": user, "aors": user, "context": s.pbx_context, "allow": s.pbx_allow}
                if s.pbx_transport:
                    endpoint["transport"] = s.pbx_transport
                steps = [("auth", user, auth), ("aor", user, aor), ("endpoint", user, endpoint)]
            else:
                steps = self._missing_objects(user, existing, auth, aor)
        created: list[str] = []
        what = "create account" if existing is None else "repair account"
        for kind, oid, fields in steps:
            try:
                with self._ari():
                    self.ari.put_object(kind, oid, fields)
            except WriteDeniedError as exc:
                return result(
                    m.CreateAccountOutcome.WRITE_DENIED,
                    f"Cannot {what} {user}: connbot's ARI user is read-only (403 Write access denied).",
                    created=created,
                    failed_at=f"{kind} {oid}",
                    error=str(exc),
                ).found(config_writable=False)
            except ReadOnlyBackendError as exc:
                return result(
                    m.CreateAccountOutcome.FORBIDDEN_READONLY_BACKEND,
                    f"Cannot {what} {user}: the PBX refused to write its {kind} (403: a read-only "
                    "backend such as pjsip.conf, or a database that refuses writes); do it by hand "
                    "once the PBX accepts writes.",
                    created=created,
                    failed_at=f"{kind} {oid}",
                    error=str(exc),
                ).found(config_writable=False)
            except InvalidFieldsError as exc:
                return result(
                    m.CreateAccountOutcome.INVALID_FIELDS,
                    f"Asterisk rejected the {kind} {oid} of account {user} (400); "
                    "check CONNBOT_PBX_* settings.",
                    created=created,
                    failed_at=f"{kind} {oid}",
                    error=str(exc),
                )
            created.append(f"{kind} {oid}")
        new_auth = any(kind == "auth" for kind, _, _ in steps)
        pushed = (
            (self._push_password(inp, password) if self.app else "no app backend is configured")
            if new_auth
            else None
        )
        summary = (
            f"Created account {user} on the PBX (auth, AOR, endpoint; context {s.pbx_context})"
            if existing is None
            else f"Repaired account {user} on the PBX: created only its missing {_and(created)}"
        )
        if new_auth:
            summary += (
                "; the app got the new password."
                if pushed is None
                else f"; connbot could not give the app the new password: {pushed}."
            )
        else:
            summary += "."
        return result(
            m.CreateAccountOutcome.CREATED,
            summary,
            created=created,
            context=s.pbx_context,
            transport=s.pbx_transport or None,
            allow=s.pbx_allow,
            app_password_set=new_auth and pushed is None,
        ).found(config_writable=True, account="exists", account_missing=[], user_known_pbx=True)

    def _missing_objects(
        self, user: str, endpoint: dict[str, str], auth: dict[str, str], aor: dict[str, str]
    ) -> list[tuple[str, str, dict[str, str]]]:
        """The auth and AOR objects an existing endpoint names that do not exist, to create."""
        auths, aors = _ids(endpoint.get("auth")), _ids(endpoint.get("aors"))
        if not auths or not aors:
            raise PermanentError(
                f"the endpoint of account {user} names no {'auth' if not auths else 'AOR'}: "
                "creating objects cannot repair it; fix the endpoint by hand"
            )
        steps = [("auth", a, auth) for a in auths if self.ari.get_object("auth", a) is None]
        steps += [("aor", a, aor) for a in aors if self.ari.get_object("aor", a) is None]
        if not steps:
            raise PermanentError(
                f"account {user} already exists on the PBX and is complete; not overwriting it"
            )
        return steps

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
            return str(exc)
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
        with self._ari():
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
            ).found(credentials="username_mismatch")
        if fp.get("realm") != digest.realm:
            return result(
                m.CredentialsOutcome.REALM_MISMATCH,
                f"The app's credentials are for realm {fp.get('realm')!r} but the PBX uses {digest.realm!r}.",
                **evidence,
            ).found(credentials="realm_mismatch")
        if not hmac.compare_digest(str(fp["value"]).lower(), digest.ha1):
            return result(
                m.CredentialsOutcome.PASSWORD_MISMATCH,
                f"The app's password for {user} differs from the PBX's (HA1 digests differ).",
                **evidence,
            ).found(credentials="password_mismatch")
        return result(
            m.CredentialsOutcome.MATCH,
            f"The app's username, realm and password for {user} match the PBX's.",
            **evidence,
        ).found(credentials="match")

    @action(m.ResetPasswordOutcome, changes_account=True)
    def reset_password(self, inp: ActionInput) -> ActionResult:
        """Make the app's and the PBX's passwords agree, then reconnect."""
        user = self._user(inp)
        if self.app is None:
            raise NotConfiguredError(
                "pbx.reset_password needs the app backend (CONNBOT_APP_API_URL) "
                "to give the app the new password"
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
            ).found(config_writable=False)
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
                f"Set a new password on the PBX, but the app backend refused it ({exc.status}): the app must "
                "be given a new password by hand.",
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
        # What the comparison before the reset found no longer holds: compared again, so that the
        # findings say whether the credentials now agree (a user name or realm the reset left alone).
        try:
            again = self.compare_credentials(inp)
            compared = f" Compared again: {again.summary}"
        except AdapterError as exc:
            again, compared = None, f" connbot could not compare the credentials again: {exc}."
        res = result(
            m.ResetPasswordOutcome.UPDATED_STILL_FAILING,
            f"Set a new password for {user} on the PBX and in the app, but the app still does not register."
            + compared,
            **evidence,
        )
        return res.found(**again.facts) if again is not None else res

    # -- services
    @action(m.HealthOutcome)
    def health(self, inp: ActionInput) -> ActionResult:
        """Asterisk answers and its SIP modules run."""
        try:
            with self._ari():
                ping = self.ari.ping()
                info = self.ari.info("status", "system")
        except (AriAuthError, AriForbiddenError) as exc:
            return result(
                m.HealthOutcome.AUTH_ERROR,
                f"Asterisk refused connbot on ARI ({exc.status}): check the ARI user, password and ACL.",
                error=str(exc),
            ).found(**exc.facts)
        except (TransientError, RefusedError) as exc:
            return result(
                m.HealthOutcome.DOWN, f"Asterisk on {self.pbx} does not answer: {exc}.", error=str(exc)
            ).found(**exc.facts)
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
        seen = {"pbx": self.pbx, "ari": "reachable"}
        if not_running:
            return result(
                m.HealthOutcome.MODULE_NOT_RUNNING,
                f"Asterisk answers but {_are_not(not_running, 'running')}.",
                **evidence,
            ).found(**seen, pjsip="not_running", pjsip_stopped=not_running)
        if not_loaded:
            return result(
                m.HealthOutcome.MODULE_MISSING,
                f"Asterisk answers but {_are_not(not_loaded, 'loaded')}.",
                **evidence,
            ).found(**seen, pjsip="missing", pjsip_stopped=not_loaded)
        return result(
            m.HealthOutcome.UP,
            f"Asterisk {evidence['version'] or ''} answers and its SIP modules run.".replace("  ", " "),
            **evidence,
        ).found(**seen, pjsip="running")

    @action(m.DatabaseOutcome)
    def check_database(self, inp: ActionInput) -> ActionResult:
        """The realtime database answers, quickly, and Asterisk's link to it is up."""
        with self._ari():
            modules = {name: (self.ari.module(name) or {}).get("status", "missing") for name in DB_MODULES}
        realtime = {n: st for n, st in modules.items() if n in REALTIME_MODULES and st != "missing"}
        evidence: dict[str, Any] = {"modules": modules}
        out = m.DatabaseOutcome
        slow_ms = self.settings.pbx_db_slow_ms
        seen: dict[str, Any] = {"pbx": self.pbx, "ari": "reachable"}
        if self.db is not None:
            probe = self.db.probe()
            evidence.update(
                database=probe.target,
                latency_ms=probe.latency_ms,
                tables=probe.tables,
                threshold_ms=slow_ms,
            )
            if not probe.reachable:
                return result(
                    out.DB_UNREACHABLE,
                    f"The realtime database does not answer: {probe.error}",
                    error=probe.error,
                    **evidence,
                ).found(**seen, realtime_db="unreachable")
            seen["realtime_db_ms"] = probe.latency_ms
            if probe.missing_tables:
                return result(
                    out.DB_SCHEMA_MISSING,
                    f"The realtime database lacks the PJSIP tables {', '.join(probe.missing_tables)}.",
                    **evidence,
                ).found(**seen, realtime_db="schema_missing")
            if probe.latency_ms is not None and probe.latency_ms > slow_ms:
                return result(
                    out.DB_SLOW,
                    f"The realtime database is slow: {probe.latency_ms:.0f} ms (threshold {slow_ms:.0f} ms).",
                    **evidence,
                ).found(**seen, realtime_db="slow")
            if not realtime:
                return result(
                    out.MODULE_NOT_LOADED,
                    "The database answers but Asterisk has no realtime driver loaded (res_config_odbc.so / "
                    "res_config_pgsql.so).",
                    **evidence,
                ).found(**seen, realtime_db="none")
        elif not realtime:
            return result(
                out.NO_DATABASE,
                "Asterisk uses no realtime database (no realtime driver loaded, CONNBOT_PBX_DB_URL not set).",
                **evidence,
            ).found(**seen, realtime_db="none")
        stopped = [n for n, st in modules.items() if st not in ("missing", "Running")]
        if stopped:
            return result(
                out.ASTERISK_DB_LINK_DOWN,
                f"Asterisk's database link is down: {_are_not(stopped, 'running')}.",
                **evidence,
            ).found(**seen, realtime_db="link_down")
        if inp.user:
            times: list[float] = []
            try:
                with self._ari():
                    found = self._lookup("endpoint", inp.user, times) is not None
            except TransientError as exc:
                return result(
                    out.ASTERISK_DB_LINK_DOWN,
                    f"Asterisk cannot read accounts from its database: {exc}",
                    error=str(exc),
                    **evidence,
                ).found(**seen, realtime_db="link_down", config_lookup="error")
            ms = times[-1]
            evidence.update(lookup_through_asterisk="found" if found else "not found", lookup_ms=ms)
            seen.update(
                config_lookup="found" if found else "not_found",
                config_lookup_ms=ms,
                config_lookup_status=200 if found else 404,
            )
            if ms > slow_ms and not found:
                return result(
                    out.ASTERISK_DB_LINK_DOWN,
                    "Asterisk cannot serve accounts from its database: "
                    f"looking up {inp.user} took {ms:.0f} ms "
                    f"(threshold {slow_ms:.0f} ms) and answered 404.",
                    **evidence,
                ).found(**seen, realtime_db="link_down")
            if ms > slow_ms:
                return result(
                    out.DB_SLOW,
                    f"Asterisk is slow to read accounts: looking up {inp.user} took {ms:.0f} ms "
                    f"(threshold {slow_ms:.0f} ms).",
                    **evidence,
                ).found(**seen, realtime_db="slow")
        said = (
            [f"The realtime database answers in {evidence['latency_ms']:.0f} ms"]
            if self.db is not None
            else []
        )
        said.append(
            f"Asterisk's link to {'it' if said else 'the realtime database'} ({', '.join(realtime)}) is up"
        )
        if inp.user:
            said.append(f"looking up {inp.user} took {evidence['lookup_ms']:.0f} ms")
        return result(
            out.DB_OK,
            f"{_and(said)}.",
            **evidence,
        ).found(**seen, realtime_db="ok")

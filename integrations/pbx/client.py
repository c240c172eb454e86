"""Asterisk's REST interface (ARI): the few calls connbot needs, with ARI's errors translated here.

Secrets stop at this boundary. The dynamic-configuration GET of an auth object returns the SIP
password in clear (Asterisk serialises every sorcery field); `get_object` replaces it with a
marker, and `get_digest` returns only HA1 = MD5(username:realm:password), which callers compare
but never show. Error messages carry ARI's `{"message": ...}` text, never a request body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from pydantic import SecretStr

from integrations import http
from integrations.base import PermanentError

SECRET_FIELDS = frozenset({"password", "md5_cred", "oauth_secret", "refresh_token", "oauth_clientid"})
REDACTED = "<redacted>"


class AriAuthError(PermanentError):
    """401: ARI refused connbot's user name or password."""


class AriForbiddenError(PermanentError):
    """403 `Access denied by ACL`: connbot's address may not use ARI."""


class WriteDeniedError(PermanentError):
    """403 `Write access denied`: connbot's ARI user is read_only."""


class ReadOnlyBackendError(PermanentError):
    """403 `Cannot create|update sorcery objects`: the configuration backend is not writable."""


class InvalidFieldsError(PermanentError):
    """400: Asterisk rejected the fields of an object."""


class AriNotFoundError(PermanentError):
    """404: the object, module or endpoint does not exist."""


def ha1(username: str, realm: str, password: str) -> str:
    """The digest credential Asterisk and the app can both compute, never the password itself."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def redact(fields: dict[str, str]) -> dict[str, str]:
    """Secret fields replaced by a marker; an empty secret stays empty, so "not set" still shows."""
    return {k: (REDACTED if k in SECRET_FIELDS and v else v) for k, v in fields.items()}


@dataclass(frozen=True)
class Digest:
    """What the PBX holds for an auth object, without the password: username, realm and HA1."""

    auth_id: str
    username: str
    realm: str
    auth_type: str
    ha1: str | None  # None when neither a password nor md5_cred is set

    def __repr__(self) -> str:
        return (
            f"Digest(auth_id={self.auth_id!r}, username={self.username!r}, realm={self.realm!r}, "
            f"ha1={'set' if self.ha1 else None})"
        )


class AriClient:
    """One Asterisk's ARI, over HTTP Basic authentication."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr,
        *,
        policy: http.RetryPolicy,
        verify: bool | str = True,
    ):
        self.base = base_url.rstrip("/") + "/ari"
        self.policy = policy
        self._session = http.session(auth=(username, password.get_secret_value()), verify=verify)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = http.request(self._session, method, self.base + path, self.policy, service="ARI", **kwargs)
        if resp.status_code < 400:
            return _json(resp) if resp.content else None
        message = _message(resp)
        where = f"ARI {method} {path}"
        if resp.status_code == 401:
            raise AriAuthError(
                f"{where}: 401 {message or 'Authentication required'} (check CONNBOT_ARI_USERNAME/PASSWORD)",
                401,
            )
        if resp.status_code == 403:
            if "write access denied" in message.lower():
                raise WriteDeniedError(f"{where}: 403 {message} (the ARI user is read_only)", 403)
            if message.lower().startswith(("cannot create", "cannot update", "could not delete")):
                raise ReadOnlyBackendError(
                    f"{where}: 403 {message} (the sorcery backend is not writable)", 403
                )
            raise AriForbiddenError(f"{where}: 403 {message}", 403)
        if resp.status_code == 404:
            raise AriNotFoundError(f"{where}: 404 {message}", 404)
        if resp.status_code == 400:
            raise InvalidFieldsError(f"{where}: 400 {message}", 400)
        http.raise_for_status(resp, "ARI")
        return None  # pragma: no cover - raise_for_status raised

    # -- health
    def ping(self) -> dict[str, Any]:
        return _mapping(self._call("GET", "/asterisk/ping"), "ping")

    def info(self, *only: str) -> dict[str, Any]:
        return _mapping(
            self._call("GET", "/asterisk/info", params={"only": list(only)} if only else None), "info"
        )

    def module(self, name: str) -> dict[str, Any] | None:
        """A loaded module by its full name (`res_pjsip.so`), or None when it is not loaded."""
        try:
            return _mapping(self._call("GET", f"/asterisk/modules/{quote(name)}"), "module")
        except AriNotFoundError:
            return None

    def endpoint_state(self, resource: str) -> str | None:
        """A PJSIP endpoint's state (`online`: a contact of one of its AORs is available; `offline`,
        `unknown`), or None when ARI knows no such endpoint."""
        try:
            found = _mapping(self._call("GET", f"/endpoints/PJSIP/{quote(resource, safe='')}"), "endpoint")
        except AriNotFoundError:
            return None
        return str(found.get("state") or "unknown")

    # -- dynamic configuration (sorcery objects of res_pjsip)
    def _object_path(self, object_type: str, object_id: str) -> str:
        return f"/asterisk/config/dynamic/res_pjsip/{quote(object_type)}/{quote(object_id, safe='')}"

    def _raw_object(self, object_type: str, object_id: str) -> dict[str, str] | None:
        try:
            data = self._call("GET", self._object_path(object_type, object_id))
        except AriNotFoundError as exc:
            if "object with id" in str(exc).lower():
                return None
            raise
        return _tuples(data)

    def get_object(self, object_type: str, object_id: str) -> dict[str, str] | None:
        """An object's fields with secrets redacted, or None when it does not exist."""
        raw = self._raw_object(object_type, object_id)
        return None if raw is None else redact(raw)

    def get_digest(self, auth_id: str, default_realm: str) -> Digest | None:
        """The auth object reduced to username, realm and HA1; None when it does not exist."""
        raw = self._raw_object("auth", auth_id)
        if raw is None:
            return None
        username = raw.get("username") or auth_id
        realm = raw.get("realm") or default_realm
        if raw.get("md5_cred"):
            digest: str | None = raw["md5_cred"].lower()
        elif raw.get("password"):
            digest = ha1(username, realm, raw["password"])
        else:
            digest = None
        return Digest(auth_id, username, realm, raw.get("auth_type", ""), digest)

    def put_object(self, object_type: str, object_id: str, fields: dict[str, str]) -> dict[str, str]:
        """Create or partially update an object; returns its fields after the change, redacted."""
        body = {"fields": [{"attribute": k, "value": v} for k, v in fields.items()]}
        return redact(_tuples(self._call("PUT", self._object_path(object_type, object_id), json=body)))


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise PermanentError(
            f"ARI answered {resp.request.method} {resp.url.split('?')[0]} with malformed JSON",
            resp.status_code,
        ) from None


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200].strip()
    return str(body.get("message", ""))[:200] if isinstance(body, dict) else ""


def _mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PermanentError(f"ARI {what}: expected a JSON object, got {type(data).__name__}")
    return data


def _tuples(data: Any) -> dict[str, str]:
    """`List[ConfigTuple]` as a dict; anything else is a malformed answer."""
    if not isinstance(data, list) or not all(isinstance(t, dict) and "attribute" in t for t in data):
        raise PermanentError(
            f"ARI config: expected a list of {{attribute, value}}, got {type(data).__name__}"
        )
    return {str(t["attribute"]): str(t.get("value", "")) for t in data}

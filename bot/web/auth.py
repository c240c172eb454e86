"""Who may use the desk: open on loopback, a login everywhere else; CSRF tokens on every form.

The desk needs no login while it is bound to a loopback address (`CONNBOT_HOST`, default
127.0.0.1) and the request comes from loopback. Otherwise every desk page and every /api call
needs a login: the admin token (`CONNBOT_ADMIN_TOKEN`, as a bearer token, a basic-auth password
or on the login form) or a desk user (`CONNBOT_DESK_USERS`, basic auth or the login form).
Machine endpoints (/healthz, /readyz, /metrics, /webhooks/*, /slack/*) verify their callers
their own way and stay outside the login.

Passwords are stored as `pbkdf2_sha256$<iterations>$<salt>$<hash>` (hashlib.pbkdf2_hmac), made
with `connbot desk hash-password`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import quote

from flask import Flask, g, jsonify, redirect, request, session
from pydantic import Field, SecretStr
from werkzeug.wrappers import Response as WerkzeugResponse

from bot.settings import Settings
from integrations.settings import Section, SettingsError

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000
OPEN_PREFIXES = ("/healthz", "/readyz", "/metrics", "/webhooks/", "/slack/", "/desk-static/", "/login")


class DeskSettings(Section):
    """Settings of the desk's access control."""

    desk_users: str = Field(
        "", description="comma-separated name:hash pairs (hash from `connbot desk hash-password`)"
    )
    desk_secret_key: SecretStr | None = Field(
        None, description="signs desk sessions; set it when several web processes serve the desk"
    )


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """A salted PBKDF2-SHA256 hash of `password`, in the form `CONNBOT_DESK_USERS` expects."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches a hash made by `hash_password` (constant-time compare)."""
    scheme, iterations, salt, digest = stored.split("$")
    if scheme != SCHEME:
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(got, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_users(value: str) -> dict[str, str]:
    """`alice:<hash>,bob:<hash>` as {name: hash}; a malformed entry is a settings error."""
    users: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in value.split(","))):
        name, sep, stored = entry.partition(":")
        parts = stored.split("$")
        if not sep or not name or len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
            raise SettingsError(
                f"CONNBOT_DESK_USERS: expected name:{SCHEME}$<iterations>$<salt>$<hash>, "
                f"got an entry for {name or '?'!r} that is not (make one with `connbot desk hash-password`)"
            )
        users[name] = stored
    return users


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Access:
    """The desk's access policy for one app, built from the settings."""

    def __init__(self, settings: Settings, desk: DeskSettings):
        self.secret_key = (
            desk.desk_secret_key.get_secret_value() if desk.desk_secret_key else secrets.token_hex(32)
        )
        self.open_host = is_loopback(settings.host)
        self.token = settings.admin_token.get_secret_value() if settings.admin_token else None
        self.users = parse_users(desk.desk_users)
        if not self.open_host and not (self.token or self.users):
            raise SettingsError(
                f"CONNBOT_HOST={settings.host} is not a loopback address, so the desk needs a login: "
                "set CONNBOT_ADMIN_TOKEN or CONNBOT_DESK_USERS"
            )

    def login_required(self) -> bool:
        return not (self.open_host and is_loopback(request.remote_addr))

    def verify(self, name: str, password: str) -> str | None:
        """The logged-in name for these credentials, or None."""
        stored = self.users.get(name)
        if stored is not None and check_password(password, stored):
            return name
        if self.token and hmac.compare_digest(password.encode(), self.token.encode()):
            return name if name and name not in self.users else "admin"
        return None

    def from_header(self) -> str | bool | None:
        """The name the Authorization header proves; None when there is none; False when it is wrong."""
        header = request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        if kind.lower() == "bearer":
            return (
                "admin"
                if self.token and hmac.compare_digest(value.strip().encode(), self.token.encode())
                else False
            )
        if kind.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self.verify(name, password) or False
        return None

    def guard(self) -> WerkzeugResponse | None:
        """Before every request: let it through, or answer 401 / send the browser to the login page."""
        g.user = session.get("user")
        if not self.login_required() or request.path.startswith(OPEN_PREFIXES):
            return None
        proven = self.from_header()
        if proven:
            g.user = proven
            return None
        if proven is None and g.user:
            return None
        if proven is None and not request.path.startswith("/api/"):
            return redirect(f"/login?next={quote(request.full_path.rstrip('?'))}")
        response = jsonify(
            error="Unauthorized",
            message="log in: a bearer admin token or basic-auth desk user is required"
            if proven is None
            else "wrong credentials",
        )
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="connbot desk"'
        return response


def csrf_token() -> str:
    """This session's CSRF token, made on first use; every desk form carries it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    return (
        bool(sent) and "csrf" in session and hmac.compare_digest(sent.encode(), str(session["csrf"]).encode())
    )


def install(app: Flask, settings: Settings, desk: DeskSettings) -> Access:
    """Give the app a session key, the access policy and the CSRF token helper for templates."""
    access = Access(settings, desk)
    app.secret_key = access.secret_key
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="connbot_desk",
    )
    app.extensions["connbot.access"] = access
    app.before_request(access.guard)
    app.jinja_env.globals["csrf_token"] = csrf_token
    return access

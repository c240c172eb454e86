"""Who may use the desk: open on loopback, a login everywhere else; CSRF tokens on every form.

The desk needs no login while it is configured for a loopback address (`CONNBOT_HOST`, default
127.0.0.1), the socket the request came in on is really bound to one (gunicorn's `--bind`, which
may differ from `CONNBOT_HOST`, as the WSGI `SERVER_NAME`), and the request comes from loopback.
Otherwise every desk page and every /api call needs a login: the admin token
(`CONNBOT_ADMIN_TOKEN`, as a bearer token, a basic-auth password or on the login form) or a desk
user (`CONNBOT_DESK_USERS`, basic auth or the login form).
Machine endpoints (/healthz, /readyz, /metrics, /webhooks/*, /slack/*) verify their callers
their own way and stay outside the login.

Passwords are stored as `pbkdf2_sha256$<iterations>$<salt>$<hash>` (hashlib.pbkdf2_hmac), made
with `connbot desk hash-password`. A name that is no desk user costs the same hashing as one that
is (so timing does not tell them apart); failed logins are throttled per name and per client
address (`Throttle`), and at most one password is hashed at a time per process, so a burst of
logins cannot take the CPUs from everything else. A login on the form is held on the server
(`DeskSession`, 12 hours); logging out deletes it, so a copied cookie stops working too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
import socket
import threading
import time
from collections import deque
from urllib.parse import quote

from flask import Flask, Request, g, jsonify, redirect, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from pydantic import Field, SecretStr
from werkzeug.wrappers import Response as WerkzeugResponse

from bot.errors import BadRequestError
from bot.settings import Settings
from bot.state.models import DeskSession, utcnow
from bot.state.store import Store
from integrations.settings import Section, SettingsError

SESSION_TTL = dt.timedelta(hours=12)
SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000
# Endpoints for machines, which check their callers their own way.
MACHINE_PREFIXES = ("/healthz", "/readyz", "/metrics", "/webhooks/", "/slack/")
OPEN_PREFIXES = (*MACHINE_PREFIXES, "/desk-static/", "/login")


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


def bound_to_loopback() -> bool:
    """Whether the listening socket this request came in on is bound to a loopback address (gunicorn
    and werkzeug give the bound address as `SERVER_NAME`; a unix socket counts as not loopback,
    since a proxy in front of it may serve anyone)."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        return False
    return is_loopback(request.environ.get("SERVER_NAME"))


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Throttle:
    """Failed logins remembered per key (a name, a client address) for `window` seconds; a key with
    `limit` failures in that time is refused without its password being hashed. Per process."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(key)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if not failures:
                self._failures.pop(key, None)
                return 0.0
            return failures[0] + self.window - now if len(failures) >= self.limit else 0.0

    def failed(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, deque()).append(time.monotonic())

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class TooManyLogins(BadRequestError):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message, status=429)
        self.retry_after = max(1, int(retry_after + 0.999))


class Access:
    """The desk's access policy for one app, built from the settings."""

    # Failed logins allowed per name and per client address in 15 minutes, and passwords hashed
    # at once per process (PBKDF2 takes a CPU for a good part of a second).
    PER_NAME, PER_CLIENT, WINDOW, HASHING = 5, 20, 900.0, 1

    def __init__(self, settings: Settings, desk: DeskSettings):
        self.secret_key = (
            desk.desk_secret_key.get_secret_value() if desk.desk_secret_key else secrets.token_hex(32)
        )
        self.open_host = is_loopback(settings.host)
        self.token = settings.admin_token.get_secret_value() if settings.admin_token else None
        self.users = parse_users(desk.desk_users)
        # What an unknown name is checked against: the same cost as the users' own hashes.
        # What an unknown name is checked against, at the users' own cost (with no users, no name
        # is known and there is nothing to tell apart).
        rounds = max((int(h.split("$")[1]) for h in self.users.values()), default=ITERATIONS)
        self._decoy = hash_password(secrets.token_urlsafe(16), iterations=rounds) if self.users else None
        self.by_name, self.by_client = (
            Throttle(self.PER_NAME, self.WINDOW),
            Throttle(self.PER_CLIENT, self.WINDOW),
        )
        self._hashing = threading.BoundedSemaphore(self.HASHING)
        self.store: Store | None = None
        if not self.open_host and not (self.token or self.users):
            raise SettingsError(
                f"CONNBOT_HOST={settings.host} is not a loopback address, so the desk needs a login: "
                "set CONNBOT_ADMIN_TOKEN or CONNBOT_DESK_USERS"
            )

    def login_required(self) -> bool:
        return not (self.open_host and bound_to_loopback() and is_loopback(request.remote_addr))

    def verify(self, name: str, password: str) -> str | None:
        """The logged-in name for these credentials, or None. Raises `TooManyLogins` (429) while the
        name or the client is throttled, or while another password is being hashed for too long."""
        client, key = request.remote_addr or "?", name[:255]  # the throttle's keys, bounded
        wait = max(self.by_name.wait(key), self.by_client.wait(client))
        if wait:
            raise TooManyLogins(f"too many failed logins; try again in {int(wait) + 1} s", wait)
        if not self._hashing.acquire(timeout=5):
            raise TooManyLogins("too many logins at once; try again in a few seconds", 5)
        try:
            # One hash whatever the name (an unknown one against the decoy): timing tells no names apart.
            stored = self.users.get(name, self._decoy)
            known = stored is not None and check_password(password, stored) and name in self.users
        finally:
            self._hashing.release()
        if known:
            self.by_name.forget(key)
            return name
        if self.token and hmac.compare_digest(password.encode(), self.token.encode()):
            return name if name and name not in self.users else "admin"
        self.by_name.failed(key)
        self.by_client.failed(client)
        return None

    def open_session(self, user: str) -> str:
        """Hold a new login on the server; returns the id the session cookie carries."""
        assert self.store is not None
        sid = secrets.token_urlsafe(32)
        now = utcnow()
        with self.store.tx() as s:
            s.query(DeskSession).filter(DeskSession.expires_at <= now).delete()
            s.add(DeskSession(id=sid, user=user, created_at=now, expires_at=now + SESSION_TTL))
        return sid

    def session_user(self) -> str | None:
        """Who this request's session cookie is logged in as, if its login is still held."""
        sid = session.get("sid")
        if not isinstance(sid, str) or self.store is None:
            return None
        with self.store.tx() as s:
            held = s.get(DeskSession, sid)
            user = held.user if held is not None and held.expires_at > utcnow() else None
        if user is None:
            session.pop("sid", None)
        return user

    def close_session(self) -> None:
        """Log out: the login is deleted on the server, whichever copy of the cookie comes back."""
        sid = session.get("sid")
        if isinstance(sid, str) and self.store is not None:
            with self.store.tx() as s:
                s.query(DeskSession).filter(DeskSession.id == sid).delete()
        session.clear()

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
        if request.path.startswith(OPEN_PREFIXES):
            g.user = None
            return None
        g.user = self.session_user()
        if not self.login_required():
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


def _too_many(exc: TooManyLogins) -> WerkzeugResponse:
    response = jsonify(error="Too Many Requests", message=str(exc))
    response.status_code = 429
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


class _DeskSessions(SecureCookieSessionInterface):
    """The desk's session cookie, not opened for machine endpoints (webhooks, Slack, health and
    metrics): they have no session, read no cookie and set none."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(MACHINE_PREFIXES):
            return None  # Flask's null session: nothing to read or to save
        return super().open_session(app, request)


def install(app: Flask, settings: Settings, desk: DeskSettings, store: Store) -> Access:
    """Give the app a session key, the access policy and the CSRF token helper for templates; desk
    logins are held in `store`."""
    access = Access(settings, desk)
    access.store = store
    app.secret_key = access.secret_key
    app.session_interface = _DeskSessions()
    app.config.update(
        PERMANENT_SESSION_LIFETIME=SESSION_TTL,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="connbot_desk",
    )
    app.extensions["connbot.access"] = access
    app.before_request(access.guard)
    app.register_error_handler(TooManyLogins, _too_many)
    app.jinja_env.globals["csrf_token"] = csrf_token
    return access

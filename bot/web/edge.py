"""Checks every request passes before any view sees it.

The desk and the API answer only to the host names people reach them by: `CONNBOT_PUBLIC_URL`'s
host and the loopback names. Any other `Host:` is a 400, which stops DNS rebinding (a web page
the operator opens pointing its own name at 127.0.0.1 to file tickets or answer prompts on the
loopback desk). The machine endpoints (health, metrics, webhooks) keep any host: load balancers
and probes call them by address.

A NUL character (U+0000) in the path, the query string or a desk form is refused with a 400 naming
where it was: PostgreSQL cannot hold one in text, and no ticket key, id or field needs one. JSON
bodies are checked by `jsonbody.loads`. The machine endpoints' bodies (/webhooks/*, /slack/*) are
read raw by their own views, so their forms are not parsed here.

Every answer carries the security headers (`HEADERS`) it does not set itself: a
Content-Security-Policy allowing only the desk's own scripts and styles and no framing, `nosniff`,
`X-Frame-Options: DENY` for older browsers and a same-origin Referrer-Policy.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.errors import BadRequestError
from bot.settings import Settings
from bot.web.auth import MACHINE_PREFIXES

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

RAW_BODIES = ("/webhooks/", "/slack/")
HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
]
TOO_LARGE = "connbot.body_over"  # in the environ of a request whose body is over the limit: the limit
BODY = "connbot.body"  # in the environ of a request whose body was read whole: its bytes
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
NUL = "\x00"


def refuse_nul() -> None:
    """Before every request: a 400 naming the part of the request that carries a NUL character."""
    path = request.path
    if NUL in path:
        raise BadRequestError("the URL path contains a NUL character (U+0000)")
    # Only a query that holds a NUL, escaped (%00) or raw, is parsed to name where: most need no parsing.
    query = request.query_string
    for name, value in request.args.items(multi=True) if b"%00" in query or b"\0" in query else ():
        if NUL in name or NUL in value:
            raise BadRequestError(f"query parameter {_shown(name)}: contains a NUL character (U+0000)")
    if (
        request.method == "POST"
        and not path.startswith(RAW_BODIES)
        and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        for name, value in request.form.items(multi=True):
            if NUL in name or NUL in value:
                raise BadRequestError(f"form field {_shown(name)}: contains a NUL character (U+0000)")


def refuse_too_large() -> None:
    """Before every request: a 413 for a body `BoundedBody` found over CONNBOT_MAX_BODY_BYTES."""
    limit = request.environ.get(TOO_LARGE)
    if limit is not None:
        raise RequestEntityTooLarge(f"the body is larger than CONNBOT_MAX_BODY_BYTES ({limit} bytes)")


def _shown(name: str) -> str:
    """A field name from the request, fit to quote in an answer: NULs spelt out, at most 64 characters."""
    return repr(name.replace(NUL, "\\u0000")[:64])


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The host names the desk answers to: the public URL's and the loopback names."""
    public = urlsplit(settings.public_url).hostname
    return LOOPBACK_NAMES | ({public} if public else set())


def _host_name(host: str) -> str | None:
    """The name in a `Host:` header, without port or brackets, lower case; None if it is malformed."""
    try:
        return urlsplit("//" + host).hostname
    except ValueError:
        return None


class BoundedBody:
    """WSGI middleware: every request body is read here, before any view runs, within a deadline
    and a size limit, and handed on whole (its bytes also as `BODY`). A body not in within
    `seconds` is answered 408 and the connection closed, so a client sending a little and then
    waiting holds a server thread for `seconds` at most. A body over `limit` bytes, by its
    Content-Length or read so far (chunked, no Content-Length), is not read further, nor truncated
    (a signature check would call it forged): the app gets the request with no body, marked
    `TOO_LARGE`, and `refuse_too_large` answers it 413 as the app answers any refusal (JSON or a
    page, counted as a refused webhook)."""

    CHUNK = 65536

    def __init__(self, app: WSGIApplication, limit: int, seconds: float):
        self.app, self.limit, self.seconds = app, limit, seconds

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if declared.isdigit() and int(declared) > self.limit:
            return self._too_large(environ, start_response)
        if declared.isdigit() and int(declared) > 0:
            want = int(declared)
        elif chunked and not declared and environ.get("wsgi.input_terminated"):
            want = self.limit + 1
        else:
            return self.app(environ, start_response)
        try:
            body = self._read(environ, want)
        except TimeoutError:
            return _answer(
                start_response, "408 Request Timeout", f"the body did not arrive within {self.seconds:g} s"
            )
        if len(body) > self.limit:
            return self._too_large(environ, start_response)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        environ[BODY] = body
        return self.app(environ, start_response)

    def _too_large(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[TOO_LARGE] = self.limit
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(), "0"
        return self.app(environ, start_response)

    def _read(self, environ: WSGIEnvironment, want: int) -> bytes:
        """Up to `want` bytes of the body; TimeoutError when they take longer than `seconds`."""
        stream, sock = environ["wsgi.input"], environ.get("gunicorn.socket")
        deadline = time.monotonic() + self.seconds
        previous = sock.gettimeout() if sock is not None else None
        parts: list[bytes] = []
        got = 0
        try:
            while got < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if sock is not None:
                    sock.settimeout(left)
                chunk = stream.read(min(self.CHUNK, want - got))
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
        finally:
            if sock is not None:
                sock.settimeout(previous)
        return b"".join(parts)


class SecurityHeaders:
    """WSGI middleware: the security headers (`HEADERS`) added to every answer that does not set
    them itself, the other middleware's answers included. Added to the plain list handed to the
    server: through Flask's header objects they took 8 % of a webhook's Python calls."""

    def __init__(self, app: WSGIApplication):
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            have = {name.lower() for name, _ in headers}
            missing = [(name, value) for name, value in HEADERS if name.lower() not in have]
            return start_response(status, headers + missing, exc_info)

        return self.app(environ, start)


def _answer(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    """A JSON error answered by the middleware itself; the connection is closed after it."""
    payload = json.dumps({"error": status.split(" ", 1)[1], "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ],
    )
    return [payload]


def install(app: Flask, settings: Settings) -> None:
    hosts = allowed_hosts(settings)
    # Flask's documented way to add WSGI middleware; mypy sees a method being replaced.
    app.wsgi_app = SecurityHeaders(  # type: ignore[method-assign]
        BoundedBody(app.wsgi_app, settings.max_body_bytes, settings.body_seconds)
    )

    def check_host() -> None:
        if request.path.startswith(MACHINE_PREFIXES):
            return
        if _host_name(request.host) not in hosts:
            raise BadRequestError(
                "the Host header names a host this desk does not answer to: use the host of "
                "CONNBOT_PUBLIC_URL or a loopback name (localhost, 127.0.0.1, [::1])"
            )

    app.before_request(refuse_too_large)
    app.before_request(check_host)
    app.before_request(refuse_nul)

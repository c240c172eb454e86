"""The only place that builds HTTP sessions and decides on retries, for every requests-based client.

Policy: 429 and 503 are retried for any method, honouring `Retry-After` as a minimum wait;
timeouts, dropped connections, 500/502/504 are retried only for idempotent calls. A refused
connection is never retried: nothing listens there, which is a finding (`RefusedError`), not a
transient fault. Waits grow
exponentially with jitter, and the whole call is bounded by `RetryPolicy.total`: past that the
last failure is raised as a `TransientError`. Other 4xx answers are returned to the caller, who
maps them (`raise_for_status` below turns them into `PermanentError`).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_exponential

from integrations.base import PermanentError, RefusedError, TransientError

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
ALWAYS_RETRY = frozenset({429, 503})
RETRY_IF_IDEMPOTENT = frozenset({500, 502, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    total: float = 30.0
    backoff: float = 0.5
    max_backoff: float = 8.0
    connect_timeout: float = 3.05
    read_timeout: float = 15.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


class _Retryable(TransientError):
    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None, body: str = ""
    ):
        super().__init__(message, status)
        self.retry_after = retry_after
        self.body = body


class Exhausted(TransientError):
    """Every attempt failed; `body` is the last error answer's body (empty after a timeout or a dropped
    connection), for clients whose contract gives a 503 a meaning of its own."""

    def __init__(self, message: str, status: int | None, body: str):
        super().__init__(message, status)
        self.body = body


def retry_after(resp: requests.Response) -> float | None:
    """`Retry-After` in seconds (number or HTTP date), clipped to at least one second."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(seconds, 1.0)


def base_url(value: str, api_suffix: str) -> str:
    """A settings URL checked to be http(s)://host[:port], without a trailing slash or `api_suffix`.
    A user or password in it is refused: the URL is quoted in error messages, which reach tickets
    and logs; credentials have settings of their own, kept secret."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise ValueError("expected an http(s)://host[:port] URL")
    if "@" in parts.netloc:
        raise ValueError(
            "expected an http(s)://host[:port] URL without a user or password in it (the URL is quoted "
            "in messages; give the credentials in their own settings)"
        )
    return value.removesuffix(api_suffix)


def refused(exc: BaseException) -> bool:
    """Whether a connection error comes from a refused connection (requests wraps urllib3 wraps the OS's)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        if isinstance(item, ConnectionRefusedError):
            return True
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return False


def session(
    *, auth: Any = None, headers: dict[str, str] | None = None, verify: bool | str = True
) -> requests.Session:
    s = requests.Session()
    s.auth = auth
    s.verify = verify
    s.headers.update({"User-Agent": "connbot/0.1", "Accept": "application/json"})
    if headers:
        s.headers.update(headers)
    return s


def _where(url: str, service: str) -> str:
    """The server of `url` as a message that reaches tickets names it: what it is, when told, host and
    port (`ARI at pbx.example:8088`), not the request's path."""
    host = urlsplit(url).netloc
    return f"{service} at {host}" if service else host


def _describe(resp: requests.Response, service: str) -> str:
    said = _said(resp)
    return f"{_where(resp.url, service)} answered HTTP {resp.status_code}" + (f": {said}" if said else "")


def _said(resp: requests.Response) -> str:
    """What an error answer says in words: a JSON body's message (ARI's `message`, the app API's
    `error.message`) rather than the JSON itself, which would end up escaped in ticket comments; on
    one line, at most 300 characters."""
    try:
        body = resp.json()
    except ValueError:
        return " ".join(resp.text[:300].split())
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    message = body.get("message") or (error.get("message") if isinstance(error, dict) else error)
    return " ".join(str(message or "")[:300].split())


class Sender(Protocol):
    """What `request` sends through: a `requests.Session`, or anything with its `request` method."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response: ...


def request(
    s: Sender,
    method: str,
    url: str,
    policy: RetryPolicy,
    *,
    idempotent: bool | None = None,
    service: str = "",
    **kwargs: Any,
) -> requests.Response:
    """Send one request under the retry policy; returns the final response of a non-retried status.
    `service`: what the server is, in words (`ARI`), for the messages of a failure (`_where`)."""
    method = method.upper()
    retry_all = method in IDEMPOTENT if idempotent is None else idempotent
    kwargs.setdefault("timeout", (policy.connect_timeout, policy.read_timeout))

    where = _where(url, service)

    def attempt() -> requests.Response:
        try:
            resp = s.request(method, url, **kwargs)
        except requests.ConnectionError as exc:
            if refused(exc):
                raise RefusedError(f"{where} refused the connection") from exc
            if retry_all:
                raise _Retryable(f"cannot reach {where} ({type(exc).__name__})") from exc
            raise TransientError(f"cannot reach {where} ({type(exc).__name__})") from exc
        except requests.Timeout as exc:
            if retry_all:
                raise _Retryable(f"{where} did not answer in time") from exc
            raise TransientError(f"{where} did not answer in time") from exc
        if resp.status_code in ALWAYS_RETRY or (retry_all and resp.status_code in RETRY_IF_IDEMPOTENT):
            raise _Retryable(_describe(resp, service), resp.status_code, retry_after(resp), resp.text)
        return resp

    # Exponential backoff with up to a second of jitter, capped; tenacity's own
    # wait_exponential_jitter(initial=...) is deprecated in tenacity 9 (a DeprecationWarning).
    exp = wait_exponential(multiplier=policy.backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        backoff = min(policy.max_backoff, exp(state) + random.uniform(0, min(1.0, policy.max_backoff)))
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        return max(backoff, hinted) if hinted is not None else backoff

    retrying = Retrying(
        retry=retry_if_exception_type(_Retryable),
        wait=wait,
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.total),
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _Retryable as exc:
        raise Exhausted(str(exc), exc.status, exc.body) from None


def raise_for_status(resp: requests.Response, service: str = "") -> requests.Response:
    """Pass 2xx/3xx through; 4xx become `PermanentError`, 5xx `TransientError`, with the status.
    `service` as `request`'s."""
    if resp.status_code >= 500:
        raise TransientError(_describe(resp, service), resp.status_code)
    if resp.status_code >= 400:
        raise PermanentError(_describe(resp, service), resp.status_code)
    return resp

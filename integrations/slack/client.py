"""The Slack Web API client: base URL, token and retry handlers in one place, and the one boundary
where slack_sdk's errors become connbot's adapter errors."""

from __future__ import annotations

import logging
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from threading import Lock
from typing import Any, Literal, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)

from integrations.base import AdapterError, PermanentError, TransientError
from integrations.slack.settings import SlackSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMEOUT = 10
# Errors in a 200 answer that are worth retrying later; every other `ok: false` is permanent.
TRANSIENT = {"ratelimited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"}


class RateLimitRetry(RateLimitErrorRetryHandler):
    """Retries a 429 after exactly `Retry-After` seconds (one when absent), waiting through `sleep`."""

    def __init__(self, max_retry_count: int, sleep: Callable[[float], None]):
        super().__init__(max_retry_count=max_retry_count)
        self.sleep = sleep

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("a rate-limit retry without an answer")
        value = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            wait = float(value[0] if isinstance(value, list) else value) if value else 1.0
        except ValueError:
            wait = 1.0
        state.next_attempt_requested = True
        self.sleep(max(wait, 0.0))
        state.increment_current_attempt()


def make_client(
    settings: SlackSettings, *, may_repeat: bool = True, sleep: Callable[[float], None] = time.sleep
) -> WebClient:
    """A WebClient for the configured API URL. 429s are always retried after Retry-After (nothing
    was done); dropped connections only when `may_repeat`, since a post whose answer was lost may
    have been made."""
    handlers: list[RetryHandler] = [RateLimitRetry(2, sleep)]
    if may_repeat:
        handlers.append(ConnectionErrorRetryHandler(max_retry_count=1))
    token = settings.bot_token.get_secret_value() if settings.bot_token else None
    return WebClient(token=token, base_url=settings.api_url, timeout=TIMEOUT, retry_handlers=handlers)


@contextmanager
def translated(method: str) -> Iterator[None]:
    """Turn slack_sdk's errors from `method` into TransientError / PermanentError."""
    try:
        yield
    except SlackApiError as exc:
        status = exc.response.status_code
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        message = f"Slack {method} failed: {error or f'HTTP {status}'}"
        if status == 429 or status >= 500 or error in TRANSIENT:
            raise TransientError(message, status) from None
        raise PermanentError(message, status) from None
    except (urllib.error.URLError, OSError, SlackClientError) as exc:
        raise TransientError(f"Slack {method} failed: {exc}") from None


def quietly(fn: Callable[..., T], *args: Any) -> T | Literal[False]:
    """A Slack call made after a request was acknowledged: a failure is logged (the user sees no
    reply), never raised into bolt, which would log it as a crash. False when it failed (so
    `may_answer` failing counts as not allowed)."""
    try:
        return fn(*args)
    except AdapterError as exc:
        log.warning("slack: %s", exc)
        return False


class GroupMembers:
    """Members of Slack user groups, looked up with usergroups.users.list and kept briefly."""

    def __init__(self, client: WebClient, ttl: float):
        self.client, self.ttl = client, ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = Lock()

    def __call__(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(group)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        with translated("usergroups.users.list"):
            users = frozenset(self.client.usergroups_users_list(usergroup=group).get("users") or ())
        with self._lock:
            self._cache[group] = (now, users)
        return users

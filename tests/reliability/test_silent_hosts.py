"""A PostgreSQL or Redis host that takes the connection and then says nothing (a hung server, a proxy
whose backend is gone): connbot gives up after CONNECT_SECONDS (PostgreSQL) or REDIS_SECONDS (Redis),
or after the URL's own timeout, instead of holding the thread for minutes or for ever. The failure
is the one connbot handles as an outage (SQLAlchemy's or Redis's error), not a bug."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from bot.settings import Settings
from bot.state.queue import REDIS_SECONDS, Queue
from bot.state.store import CONNECT_SECONDS, Store


@pytest.fixture
def silent() -> Iterator[str]:
    """host:port of a listening socket nobody reads: the kernel completes the handshake, and no
    server ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _store_event(host: str, query: str = "") -> None:
    store = Store(Settings(database_url=f"postgresql://connbot@{host}/connbot{query}").sqlalchemy_url)
    try:
        with pytest.raises(OperationalError, match="timeout"):
            store.insert_event("jira", "d-1", "jira:issue_created", "VOIP-1", "{}")
    finally:
        store.dispose()


def _queue_depth(host: str, query: str = "") -> None:
    queue = Queue(f"redis://{host}/0{query}")
    with pytest.raises(RedisError, match=r"[Tt]imeout"):
        queue.depth()


def _took(fail: Callable[[], None]) -> float:
    started = time.monotonic()
    fail()
    return time.monotonic() - started


def test_the_urls_own_timeouts_are_kept(silent: str) -> None:
    assert 2 <= _took(lambda: _store_event(silent, "?connect_timeout=2")) < 4
    assert 1 <= _took(lambda: _queue_depth(silent, "?socket_timeout=1")) < 3


@pytest.mark.slow
def test_without_them_connbot_gives_up_after_its_own(silent: str) -> None:
    assert CONNECT_SECONDS <= _took(lambda: _store_event(silent)) < CONNECT_SECONDS + 3
    assert REDIS_SECONDS <= _took(lambda: _queue_depth(silent)) < REDIS_SECONDS + 3

"""A PostgreSQL host that takes the connection and then says nothing (a hung server, a proxy whose
database is gone): connbot gives up connecting after CONNECT_SECONDS, or after the URL's own
`connect_timeout`, instead of holding the thread for the kernel's TCP timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from bot.settings import Settings
from bot.state.store import CONNECT_SECONDS, Store


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A listening socket nobody reads: the kernel completes the handshake, no server ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"postgresql://connbot@127.0.0.1:{sock.getsockname()[1]}/connbot"


def _fails_after(url: str) -> float:
    store = Store(Settings(database_url=url).sqlalchemy_url)
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError, match="timeout"):
            store.insert_event("jira", "d-1", "jira:issue_created", "VOIP-1", "{}")
        return time.monotonic() - started
    finally:
        store.dispose()


def test_the_urls_own_connect_timeout_is_kept(silent_host: str) -> None:
    assert 2 <= _fails_after(silent_host + "?connect_timeout=2") < 4


@pytest.mark.slow
def test_without_one_the_connection_fails_after_connect_seconds(silent_host: str) -> None:
    assert CONNECT_SECONDS <= _fails_after(silent_host) < CONNECT_SECONDS + 3

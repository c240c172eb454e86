"""The realtime database behind Asterisk's PJSIP objects (PostgreSQL), checked directly.

psycopg's errors are translated here; messages are scrubbed of the URL's password.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg
from pydantic import SecretStr

TABLES = ("ps_endpoints", "ps_auths", "ps_aors")


@dataclass(frozen=True)
class DbProbe:
    """One look at the database: reachable or not, how fast, which `ps_*` tables exist."""

    target: dict[str, object]
    reachable: bool
    latency_ms: float | None = None
    missing_tables: tuple[str, ...] = ()
    error: str | None = None
    tables: dict[str, bool] = field(default_factory=dict)


class RealtimeDb:
    """Connects with a short timeout and runs only harmless, password-free queries."""

    def __init__(self, url: SecretStr, timeout: float):
        self._url = url
        self.timeout = timeout
        parts = urlsplit(url.get_secret_value())
        self.target: dict[str, object] = {
            "host": parts.hostname,
            "port": parts.port or 5432,
            "database": parts.path.lstrip("/") or None,
        }

    def _scrub(self, text: str) -> str:
        secret = urlsplit(self._url.get_secret_value()).password
        return text.replace(secret, "<redacted>") if secret else text

    def probe(self) -> DbProbe:
        start = time.perf_counter()
        try:
            with psycopg.connect(
                self._url.get_secret_value(), connect_timeout=max(1, round(self.timeout)), autocommit=True
            ) as conn:
                conn.execute("SELECT 1").fetchone()
                latency = (time.perf_counter() - start) * 1000
                present = {
                    t: conn.execute("SELECT to_regclass(%s) IS NOT NULL", (t,)).fetchone() == (True,)
                    for t in TABLES
                }
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return DbProbe(self.target, False, error=self._scrub(first))
        return DbProbe(
            self.target,
            True,
            round(latency, 1),
            tuple(t for t, ok in present.items() if not ok),
            tables=present,
        )

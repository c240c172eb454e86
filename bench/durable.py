"""The ceilings for a durable intake: the least a receiver that stores before it answers must do.
A plain WSGI callable, as connbot answers the common delivery (`SignedDeliveries`), on the same
gunicorn settings as connbot (`gunicorn 'bench.durable:create_app()'`): it reads the body, checks
the HMAC, parses it (with pydantic's JSON parser, reading what connbot's receiver reads:
`Delivery`), commits one INSERT and answers. BENCH_DURABLE_DB names the database: a SQLite file
(WAL, `synchronous=NORMAL`, one writer at a time across the processes through connbot's
`WriterLock`, as connbot's store) or a `postgresql://` URL (an autocommit psycopg connection per
thread, its INSERT prepared after the first few, as connbot's). Its `events` table is made before
the server starts (`SCHEMA`)."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import psycopg
from pydantic import ValidationError

from bot.state.store import WriterLock
from integrations.jira.models import Delivery

SCHEMA = {
    "sqlite": "CREATE TABLE events (id INTEGER PRIMARY KEY, delivery_id TEXT UNIQUE, body TEXT)",
    "postgresql": "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, delivery_id TEXT UNIQUE, body TEXT)",
}
INSERT = "INSERT INTO events (delivery_id, body) VALUES ({0}, {0}) ON CONFLICT DO NOTHING RETURNING id"
Start = Callable[[str, list[tuple[str, str]]], Any]


def create_app() -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    local = threading.local()
    target, secret = os.environ["BENCH_DURABLE_DB"], os.environ["BENCH_WEBHOOK_SECRET"].encode()
    postgres = target.startswith("postgresql://")
    writer: AbstractContextManager[None] = nullcontext() if postgres else WriterLock(f"{target}.writer")
    insert = INSERT.format("%s" if postgres else "?")

    def db() -> Any:
        if not hasattr(local, "conn"):  # one autocommit connection per thread
            if postgres:
                local.conn = psycopg.connect(target, autocommit=True)
            else:
                local.conn = sqlite3.connect(
                    target, isolation_level=None, timeout=30, check_same_thread=False
                )
                local.conn.execute("PRAGMA journal_mode=WAL")
                local.conn.execute("PRAGMA synchronous=NORMAL")
        return local.conn

    def answer(start: Start, status: str, body: bytes) -> list[bytes]:
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def receive(environ: dict[str, Any], start: Start) -> list[bytes]:
        if environ["PATH_INFO"] == "/healthz":
            return answer(start, "200 OK", b'{"status":"ok"}\n')
        if (environ["PATH_INFO"], environ["REQUEST_METHOD"]) != ("/webhooks/jira", "POST"):
            return answer(start, "404 Not Found", b'{"error":"Not Found"}\n')
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        digest = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(environ.get("HTTP_X_HUB_SIGNATURE", "").encode(), digest.encode()):
            return answer(start, "401 Unauthorized", b'{"error":"Unauthorized"}\n')
        try:
            Delivery.model_validate_json(body)
        except ValidationError:
            return answer(start, "400 Bad Request", b'{"error":"Bad Request"}\n')
        conn = db()
        with writer:
            row = conn.execute(
                insert, (environ["HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER"], body.decode())
            ).fetchone()
        if row is None:
            return answer(start, "200 OK", b'{"status":"duplicate"}\n')
        return answer(start, "202 Accepted", b'{"event":%d,"status":"accepted"}\n' % row[0])

    return receive

"""The ceilings for a durable intake: the least a receiver that stores before it answers must do.
Checks the HMAC, parses the body (with pydantic's JSON parser, reading what connbot's receiver
reads: `Delivery`), commits one INSERT and answers, on the same gunicorn settings as connbot
(`gunicorn 'bench.durable:create_app()'`). BENCH_DURABLE_DB names the database: a SQLite file
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
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import psycopg
from flask import Flask, jsonify, request
from pydantic import ValidationError

from bot.state.store import WriterLock
from integrations.jira.models import Delivery

SCHEMA = {
    "sqlite": "CREATE TABLE events (id INTEGER PRIMARY KEY, delivery_id TEXT UNIQUE, body TEXT)",
    "postgresql": "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, delivery_id TEXT UNIQUE, body TEXT)",
}
INSERT = "INSERT INTO events (delivery_id, body) VALUES ({0}, {0}) ON CONFLICT DO NOTHING RETURNING id"


def create_app() -> Flask:
    app, local = Flask(__name__), threading.local()
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

    @app.post("/webhooks/jira")
    def receive():  # type: ignore[no-untyped-def]
        body = request.get_data(cache=False)
        digest = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Hub-Signature", "").encode(), digest.encode()):
            return jsonify(error="Unauthorized"), 401
        try:
            Delivery.model_validate_json(body)
        except ValidationError:
            return jsonify(error="Bad Request"), 400
        conn = db()
        with writer:
            row = conn.execute(
                insert, (request.headers["X-Atlassian-Webhook-Identifier"], body.decode())
            ).fetchone()
        return (jsonify(status="accepted", event=row[0]), 202) if row else (jsonify(status="duplicate"), 200)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok")

    return app

"""Liveness, readiness and metrics."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from bot.web import metrics
from bot.web.current import services_of

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> ResponseReturnValue:
    svc = services_of(current_app)
    problems = {}
    try:
        svc.store.ping()
    except SQLAlchemyError as exc:
        problems["database"] = f"unreachable: {type(exc.__cause__ or exc).__name__}"
    try:
        svc.queue.ping()
    except (RedisError, sqlite3.Error, OSError) as exc:
        problems["queue"] = f"unreachable: {type(exc).__name__}"
    if problems:
        return jsonify(status="unavailable", problems=problems), 503
    return jsonify(status="ready", database="ok", queue="ok")


@health.get("/metrics")
def prometheus() -> ResponseReturnValue:
    svc = services_of(current_app)
    reg = current_app.extensions.setdefault("connbot.metrics", metrics.registry(svc))
    return Response(generate_latest(reg), content_type=CONTENT_TYPE_LATEST)  # it names its charset

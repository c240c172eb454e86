"""The Flask application factory. Nothing happens at import time."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bot import logs, tracing
from bot.errors import BadRequestError, ConnbotError, NotFoundError
from bot.services import Services
from bot.settings import Settings, load_settings
from bot.web import auth, edge, metrics
from bot.web.api import api
from bot.web.auth import DeskSettings
from bot.web.current import EXTENSION
from bot.web.health import health
from bot.web.incidents import incidents
from bot.web.operate import operator
from bot.web.pages import desk
from bot.web.webhooks import jira, slack

log = logging.getLogger(__name__)


class App(Flask):
    """Flask, asking once per view or hook whether it is a coroutine function: Flask asks again on
    every call (`inspect`, nine times a webhook), and the answer cannot change. A callable that
    cannot be weakly referenced is asked every time."""

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._sync: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
            weakref.WeakKeyDictionary()
        )

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            sync = self._sync.get(func)
        except TypeError:  # no weak reference to it
            return super().ensure_sync(func)
        if sync is None:
            sync = self._sync[func] = super().ensure_sync(func)
        return sync


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the web app. With no arguments (gunicorn's `create_app()`) it reads the settings from the
    environment and sets up the process's logging as every `connbot` command does."""
    if settings is None and services is not None:
        settings = services.settings
    elif settings is None:
        settings = load_settings()
        logs.configure(settings.log_level, settings.log_format)
        tracing.configure(settings.otel_endpoint, "connbot-web")
    services = services or Services.build(settings)
    app = App(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # a backstop: `edge.BoundedBody` refuses first
    app.extensions[EXTENSION] = services
    jira.register(app, services.jira, settings.host)  # its middleware first: edge's wraps it
    edge.install(app, settings)
    metrics.count_refusals(app, services.store)
    if tracing.on():  # every connbot process configures tracing before it builds the app
        _trace_requests(app)
    auth.install(app, settings, services.sections(DeskSettings), services.store)
    app.register_blueprint(health)
    app.register_blueprint(api)
    slack.init_app(app, services)
    app.register_blueprint(desk)
    app.register_blueprint(incidents)
    app.register_blueprint(operator)
    _register_errors(app)
    return app


def _trace_requests(app: Flask) -> None:
    """Each request a span: the root of the trace of what it enqueues."""

    @app.before_request
    def start_span() -> None:
        g.trace = ExitStack()
        route = request.url_rule.rule if request.url_rule else "(no route)"
        g.trace.enter_context(tracing.span(f"{request.method} {route}", **{"http.route": route}))

    @app.teardown_request
    def end_span(_exc: BaseException | None) -> None:
        stack = g.pop("trace", None)
        if stack is not None:
            stack.close()


# Paths whose callers are programs: their errors are JSON. Everything else is a page in a browser.
MACHINE_PATHS = ("/api/", "/webhooks/", "/slack/", "/healthz", "/readyz", "/metrics")
TITLES = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}


def error_response(status: int, message: str, title: str | None = None) -> ResponseReturnValue:
    """An error as JSON for programs (`{"error", "message"}`) or as the desk's error page for people."""
    title = title or TITLES.get(status, "Error")
    if request.path.startswith(MACHINE_PATHS):
        return jsonify(error=title, message=message), status
    g.error_page = True  # the page's frame reads nothing more from the store: it may be what failed
    return render_template("error.html", status=status, title=title, message=message), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return error_response(exc.code or 500, exc.description or "", exc.name)

    @app.errorhandler(BadRequestError)
    def bad_request(exc: BadRequestError) -> ResponseReturnValue:
        return error_response(exc.status, str(exc), TITLES.get(exc.status, "Error"))

    @app.errorhandler(NotFoundError)
    def not_found(exc: NotFoundError) -> ResponseReturnValue:
        return error_response(404, str(exc))

    @app.errorhandler(ConnbotError)
    def connbot_error(exc: ConnbotError) -> ResponseReturnValue:
        log.error("request failed: %s", exc)
        return error_response(500, str(exc))

    @app.errorhandler(Exception)
    def bug(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return error_response(500, "connbot hit an internal error; see its log")

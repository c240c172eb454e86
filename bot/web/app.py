"""The Flask application factory. Nothing happens at import time."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bot.errors import BadRequestError, ConnbotError, NotFoundError
from bot.services import Services
from bot.settings import Settings, load_settings
from bot.web import auth, edge
from bot.web.api import api
from bot.web.auth import DeskSettings
from bot.web.current import EXTENSION
from bot.web.health import health
from bot.web.pages import desk
from bot.web.webhooks import jira, slack
from integrations.settings import load

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the web app. With no arguments it reads the settings from the environment."""
    settings = settings or (services.settings if services else load_settings())
    services = services or Services.build(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions[EXTENSION] = services
    edge.install(app, settings)
    auth.install(app, settings, load(DeskSettings), services.store)
    app.register_blueprint(health)
    app.register_blueprint(api)
    jira.register(app, services.jira, settings.host)
    slack.init_app(app, services)
    app.register_blueprint(desk)
    _register_errors(app)
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return jsonify(error=exc.name, message=exc.description), exc.code or 500

    @app.errorhandler(BadRequestError)
    def bad_request(exc: BadRequestError) -> ResponseReturnValue:
        return jsonify(error="Bad Request" if exc.status == 400 else "Error", message=str(exc)), exc.status

    @app.errorhandler(NotFoundError)
    def not_found(exc: NotFoundError) -> ResponseReturnValue:
        return jsonify(error="Not Found", message=str(exc)), 404

    @app.errorhandler(ConnbotError)
    def connbot_error(exc: ConnbotError) -> ResponseReturnValue:
        log.error("request failed: %s", exc)
        return jsonify(error="Internal Server Error", message=str(exc)), 500

    @app.errorhandler(Exception)
    def bug(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify(
            error="Internal Server Error", message="connbot hit an internal error; see its log"
        ), 500

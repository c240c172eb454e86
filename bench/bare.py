"""The ceiling for intake: a bare Flask endpoint that reads the body and answers 202, on the same
gunicorn settings as connbot (`gunicorn 'bench.bare:create_app()'`)."""

from __future__ import annotations

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/jira")
    def receive():  # type: ignore[no-untyped-def]
        request.get_data(cache=False)
        return jsonify(status="accepted"), 202

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify(status="ok")

    return app

"""The services of the running app, for the blueprints."""

from __future__ import annotations

from flask import Flask

from bot.services import Services

EXTENSION = "connbot"


def services_of(app: Flask) -> Services:
    services: Services = app.extensions[EXTENSION]
    return services

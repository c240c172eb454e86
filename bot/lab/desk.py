"""The lab on the desk: whether it runs in this app, and what a ticket filed with a scenario gets."""

from __future__ import annotations

from typing import Any

from flask import Flask

from bot.errors import BadRequestError
from bot.lab.lab import FIELD, Lab

KEY = "connbot.lab"


def install(app: Flask, lab: Lab) -> None:
    """Make the running lab known to the desk and the API of `app`."""
    app.extensions[KEY] = lab


def running(app: Flask) -> Lab | None:
    return app.extensions.get(KEY)


def ticket_extras(app: Flask, scenario: str | None, user: str | None) -> tuple[str | None, dict[str, Any]]:
    """The user extension and ticket fields of a ticket filed with `scenario` (none: unchanged).

    The scenario goes into the ticket's `lab_scenario` field, which the lab's PBX directory routes
    on; the extension defaults to the scenario's lab user."""
    if not scenario:
        return user, {}
    lab = running(app)
    if lab is None:
        raise BadRequestError(
            "scenario: the lab is not running; start connbot with `connbot serve --lab` (or CONNBOT_LAB=true)"
        )
    if scenario not in lab.scenarios:
        raise BadRequestError(
            f"scenario: unknown lab scenario {scenario!r}; one of {', '.join(lab.scenarios)}"
        )
    return user or lab.scenarios[scenario].user, {FIELD: scenario}

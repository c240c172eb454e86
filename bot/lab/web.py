"""The lab in the web app, installed only when the lab runs (`connbot serve --lab`): its blueprint
(`POST /api/lab/tickets`, `POST /api/lab/scenarios/<name>/repair`, `POST /api/lab/reset`, and the
Repair and Reset buttons' `POST /lab/scenarios/<name>/repair`, `POST /lab/reset`) and its
extension of the desk (the simulation banner, the scenario select of the filing form, the
scenarios under it). The production app and JSON API know nothing of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, flash, jsonify, redirect, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from pydantic import Field

from bot.errors import BadRequestError, NotFoundError
from bot.lab.lab import FIELD, Lab
from bot.lab.scenarios import DEFAULT
from bot.runs import intake
from bot.web import extension
from bot.web.api import TicketIn, parse
from bot.web.auth import csrf_ok
from bot.web.current import services_of

KEY = "connbot.lab"
BANNER = Markup(
    '<p class="lab-banner" id="lab-banner" role="note"><strong>Lab: this is a simulation.</strong> '
    "The PBXs, app backends and SIP ports connbot checks here are local simulators of the sample "
    "scenarios, not real systems. The scenarios are shared by everyone using this lab until it is reset.</p>"
)
lab = Blueprint("lab", __name__, template_folder="templates")


class LabTicketIn(TicketIn):
    scenario: str = Field(
        min_length=1, max_length=64, description="the lab scenario to check the ticket against"
    )


def install(app: Flask, running: Lab) -> None:
    """Add the running lab to `app`: its routes and its part of the desk."""
    app.extensions[KEY] = running
    app.register_blueprint(lab)
    extension.install(
        app,
        extension.DeskExtension(
            banner=BANNER,
            form_template="lab/form.html",
            form_fields=("scenario",),
            form_defaults={"scenario": DEFAULT, "summary": "The app cannot connect"},
            user_hint="the scenario's lab user",
            file=lambda form, user: ticket_extras(running, form.get("scenario", ""), user),
            aside_template="lab/scenarios.html",
            ticket_facts=_facts,
            context={"lab": running},
        ),
    )


def running(app: Flask) -> Lab | None:
    found: Lab | None = app.extensions.get(KEY)
    return found


def _lab() -> Lab:
    found = running(current_app)
    assert found is not None, "the lab blueprint is registered only with a running lab"
    return found


def _facts(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [("Lab scenario", f"{fields[FIELD]} (simulation)")] if fields.get(FIELD) else []


def ticket_extras(lab: Lab, scenario: str, user: str | None) -> tuple[str | None, dict[str, Any]]:
    """The user extension and ticket fields of a ticket filed with `scenario`.

    The scenario goes into the ticket's `lab_scenario` field, which the lab's PBX directory routes
    on; the extension defaults to the scenario's lab user."""
    if scenario not in lab.scenarios:
        raise BadRequestError(
            f"scenario: unknown lab scenario {scenario!r}; one of {', '.join(lab.scenarios)}"
        )
    return user or lab.scenarios[scenario].user, {FIELD: scenario}


@lab.post("/api/lab/tickets")
def file_ticket() -> ResponseReturnValue:
    body: LabTicketIn = parse(LabTicketIn)
    user, fields = ticket_extras(_lab(), body.scenario, body.user)
    ticket, run_id = intake.file_desk_ticket(
        services_of(current_app).context, body.summary, body.description, body.reporter, user, fields
    )
    return jsonify(key=ticket.key, run=run_id, url=f"/tickets/{ticket.key}"), 201


def _repair(name: str) -> str:
    if name not in _lab().scenarios:
        raise NotFoundError(f"no lab scenario {name!r}; one of {', '.join(_lab().scenarios)}")
    _lab().repair(name)
    return f"Repaired the fault of scenario {name}, as a person would; connbot's re-check will see it."


@lab.post("/api/lab/scenarios/<name>/repair")
def repair_api(name: str) -> ResponseReturnValue:
    return jsonify(repaired=name, message=_repair(name))


@lab.post("/lab/scenarios/<name>/repair")
def repair_page(name: str) -> ResponseReturnValue:
    if not csrf_ok():
        flash(
            "The form's security token is missing or out of date; nothing was repaired. Try again.", "error"
        )
    else:
        flash(_repair(name), "ok")
    return redirect(url_for("desk.index"), 303)


@lab.post("/api/lab/reset")
def reset_api() -> ResponseReturnValue:
    _lab().reset()
    return jsonify(reset=list(_lab().scenarios))


@lab.post("/lab/reset")
def reset_page() -> ResponseReturnValue:
    if not csrf_ok():
        flash(
            "The form's security token is missing or out of date; the lab was not reset. Try again.", "error"
        )
    else:
        _lab().reset()
        flash("The lab is reset: every scenario is back to its initial state.", "ok")
    return redirect(url_for("desk.index"), 303)

"""Incidents on the desk (`/incidents`, one page each) and in the JSON API (`/api/incidents`): what
fails, which tickets wait for it, and a person's actions (Restored, Not a PBX problem, Assign to me,
a parent issue), taken through `recovery.act` as from Slack and the CLI."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.errors import BadRequestError, NotFoundError
from bot.runs import notices
from bot.runs.prompts import Via
from bot.services import Services
from bot.state.models import Incident, IncidentState
from bot.web.api import parse
from bot.web.auth import csrf_ok
from bot.web.current import services_of
from bot.web.views import incident_dict

incidents = Blueprint("incidents", __name__, template_folder="templates")
STATES = ("open", "all")


class ActIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    by: str | None = Field(None, min_length=1, max_length=255, description="who acts; a desk login wins")
    key: str = Field("", max_length=64, description="the parent issue's key, for the action `parent`")


def _svc() -> Services:
    return services_of(current_app)


def _listing(which: str) -> list[dict[str, object]]:
    if which not in STATES:
        raise BadRequestError(f"state must be one of {', '.join(STATES)}, not {which[:40]!r}")
    svc = _svc()
    with svc.store.tx() as s:
        query = select(Incident).order_by(Incident.id.desc()).limit(200)
        if which == "open":
            query = query.where(Incident.state != IncidentState.CLOSED)
        return [incident_dict(s, inc) for inc in s.scalars(query)]


def _one(incident_id: int) -> dict[str, object]:
    svc = _svc()
    with svc.store.tx() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise NotFoundError(f"no incident {incident_id}")
        return incident_dict(s, inc, children=True)


def _act(incident_id: int, action: str, who: str, via: Via, key: str = "") -> str:
    svc = _svc()
    try:
        done = notices.act(svc.context, incident_id, action, who, via, key)
    except notices.IncidentActionError as exc:
        raise (NotFoundError if str(exc).startswith("no incident") else BadRequestError)(str(exc)) from None
    notices.show(svc.context, incident_id)
    return done


@incidents.get("/api/incidents")
def api_list() -> ResponseReturnValue:
    return jsonify(incidents=_listing(request.args.get("state", "open")))


@incidents.get("/api/incidents/<int:incident_id>")
def api_one(incident_id: int) -> ResponseReturnValue:
    return jsonify(_one(incident_id))


@incidents.post("/api/incidents/<int:incident_id>/<action>")
def api_act(incident_id: int, action: str) -> ResponseReturnValue:
    body: ActIn = parse(ActIn)
    who = g.get("user") or body.by
    if not who:
        raise BadRequestError("say who acts: a desk login, or `by` in the body")
    done = _act(incident_id, action, who, Via.API, body.key)
    return jsonify(done=done, incident=_one(incident_id))


@incidents.get("/incidents")
def page_list() -> ResponseReturnValue:
    which = request.args.get("state", "open")
    return render_template("incidents.html", incidents=_listing(which), which=which)


@incidents.get("/incidents/<int:incident_id>")
def page_one(incident_id: int) -> ResponseReturnValue:
    return render_template("incident.html", inc=_one(incident_id), name=session.get("name", ""))


@incidents.post("/incidents/<int:incident_id>")
def page_act(incident_id: int) -> ResponseReturnValue:
    if not csrf_ok():
        raise BadRequestError(
            "The form's security token is missing or out of date. Go back, reload the page and try again."
        )
    back = url_for("incidents.page_one", incident_id=incident_id)
    who = g.get("user") or request.form.get("name", "").strip()
    if not who:
        flash("Give your name so the tickets say who acted.", "error")
        return redirect(back, 303)
    session["name"] = who
    try:
        action, key = request.form.get("action", ""), request.form.get("key", "")
        flash(_act(incident_id, action, who, Via.DESK, key), "ok")
    except BadRequestError as exc:
        flash(str(exc), "error")
    return redirect(back, 303)

"""The operator verbs (`bot.runs.operate`) in the JSON API and on the desk's run page:
`POST /api/runs/<run>/cancel|retry|rerun`, `POST /api/tickets/<key>/triage`,
`POST /api/effects/<id>/retry`, `POST /api/prompts/<id>/hand`, and the run page's buttons."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from bot.errors import BadRequestError, NotFoundError
from bot.runs import operate
from bot.runs.context import RunContext
from bot.runs.prompts import Via
from bot.state.models import Run
from bot.web.api import parse
from bot.web.auth import csrf_ok
from bot.web.current import services_of
from bot.web.views import run_dict

operator = Blueprint("operator", __name__)


class VerbIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    by: str | None = Field(
        None, min_length=1, max_length=operate.MAX_WHO, description="who acts; a desk login wins"
    )
    why: str = Field("", max_length=operate.MAX_WHY, description="why, written on the ticket")
    step: str | None = Field(
        None, alias="from", min_length=1, max_length=64, description="rerun: the step to start from"
    )


class HandIn(VerbIn):
    to: str = Field(min_length=1, max_length=operate.MAX_WHO, description="a Slack user id or a desk name")


def _ctx() -> RunContext:
    return services_of(current_app).context


def _actor(body: VerbIn, via: Via) -> operate.Actor:
    who = g.get("user") or body.by
    if not who:
        raise BadRequestError("say who acts: a desk login, or `by` in the body")
    return operate.Actor(who, via, body.why)


def _answer(done: operate.Done) -> ResponseReturnValue:
    ctx = _ctx()
    with ctx.store.tx() as s:
        run = s.get(Run, done.run_id) if done.run_id is not None else None
        return jsonify(done=done.said, run=run_dict(run) if run is not None else None)


@operator.post("/api/runs/<ref>/<verb>")
def api_run_verb(ref: str, verb: str) -> ResponseReturnValue:
    """`ref`: a run id, or a ticket key (its latest run)."""
    body: VerbIn = parse(VerbIn)
    return _answer(operate.on_run(_ctx(), ref, verb, _actor(body, Via.API), body.step))


@operator.post("/api/tickets/<key>/triage")
def api_triage(key: str) -> ResponseReturnValue:
    body: VerbIn = parse(VerbIn)
    return _answer(operate.triage(_ctx(), key, _actor(body, Via.API)))


@operator.post("/api/effects/<int:effect_id>/retry")
def api_retry_effect(effect_id: int) -> ResponseReturnValue:
    body: VerbIn = parse(VerbIn)
    return _answer(operate.retry_effect(_ctx(), effect_id, _actor(body, Via.API)))


@operator.post("/api/prompts/<prompt_id>/hand")
def api_hand(prompt_id: str) -> ResponseReturnValue:
    body: HandIn = parse(HandIn)
    return _answer(operate.hand(_ctx(), prompt_id, body.to, _actor(body, Via.API)))


@operator.post("/runs/<int:run_id>/act")
def page_act(run_id: int) -> ResponseReturnValue:
    """The run page's buttons: cancel, retry, re-run (from a step), retry an effect, hand on a question."""
    if not csrf_ok():
        raise BadRequestError(
            "The form's security token is missing or out of date. Go back, reload the page and try again."
        )
    back = url_for("desk.run_page", run_id=run_id)
    form = request.form
    who = g.get("user") or form.get("name", "").strip()
    if not who:
        flash("Give your name so the ticket says who acted.", "error")
        return redirect(back, 303)
    session["name"] = who
    by, verb, ctx = operate.Actor(who, Via.DESK, form.get("why", "")), form.get("verb", ""), _ctx()
    effect = form.get("effect", "")  # a failed effect's own button
    try:
        if effect.isdigit():
            done = operate.retry_effect(ctx, int(effect), by)
        elif verb == operate.Verb.HAND:
            done = operate.hand(ctx, form.get("prompt", ""), form.get("to", ""), by)
        else:
            done = operate.on_run(ctx, str(run_id), verb, by, form.get("from", "").strip() or None)
    except (BadRequestError, NotFoundError) as exc:
        flash(str(exc), "error")
        return redirect(back, 303)
    flash(done.said, "ok")
    return redirect(url_for("desk.run_page", run_id=done.run_id or run_id), 303)

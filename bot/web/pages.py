"""The desk's pages. They read the store and call the same core functions as the JSON API:
filing goes through `intake.file_desk_ticket`, answering through `bot.web.api.answer`."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import urlsplit

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
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.errors import BadRequestError, NotFoundError
from bot.runs import intake, prompts
from bot.runs.prompts import Via, view
from bot.runs.trail import ticket_ref
from bot.services import Services
from bot.state.models import Effect, EffectState, Prompt, PromptState, Run, RunState, Ticket, utcnow
from bot.web import dashboard, extension, svg, worklist
from bot.web.api import TicketIn, answer, find_tickets
from bot.web.auth import Access, csrf_ok
from bot.web.current import services_of
from bot.web.views import already, diagnosis_dict, sla_list, step_dict, ticket_row
from integrations.base import AdapterError
from integrations.prompts import PromptView
from integrations.tickets import Note, StepRow, answerer

desk = Blueprint(
    "desk", __name__, template_folder="templates", static_folder="static", static_url_path="/desk-static"
)
FORM_FIELDS = ("summary", "description", "reporter", "user")


def _svc() -> Services:
    return services_of(current_app)


def _access() -> Access:
    access: Access = current_app.extensions["connbot.access"]
    return access


def _local(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return default
    return target


@desk.before_request
def _check_csrf() -> None:
    if request.method == "POST" and not csrf_ok():
        raise BadRequestError(
            "The form's security token is missing or out of date. Go back, reload the page and try again."
        )


def open_prompts() -> int | None:
    """How many prompts are open, for the nav; None for a visitor who has not logged in (where one must)
    and on error pages."""
    if g.get("error_page") or (_access().login_required() and not g.get("user")):
        return None
    with _svc().store.tx() as s:
        return s.scalar(select(func.count()).select_from(Prompt).where(Prompt.state == PromptState.OPEN)) or 0


@desk.app_context_processor
def _common() -> dict[str, Any]:
    """Every page's frame (error pages outside the desk's routes too): the nav's counts, who is logged in."""
    return {
        "open_prompts": open_prompts(),
        "user": g.get("user"),
        "login_required": _access().login_required(),
        "duration": dashboard.duration,
        "answerer": answerer,
        "extension": extension.of(current_app),
    }


@desk.app_template_global("ago")
def _ago(when: dt.datetime | str | None) -> str:
    """How long ago `when` was, for people: "5.0 min ago"; a dash for none."""
    if when is None:
        return "–"
    at = dt.datetime.fromisoformat(when) if isinstance(when, str) else when
    return f"{dashboard.duration(max(0.0, (_svc().context.clock() - at).total_seconds()))} ago"


@desk.get("/")
def index() -> ResponseReturnValue:
    added = extension.of(current_app)
    return _index(dict(added.form_defaults) if added else {}, [])


def _index(form: dict[str, str], problems: list[str], status: int = 200) -> ResponseReturnValue:
    page = find_tickets(_svc(), request.args)
    return render_template(
        "index.html", page=page, query=page.query, form=form, problems=problems, sorts=worklist.SORTS
    ), status


@desk.post("/tickets")
def file_ticket() -> ResponseReturnValue:
    added = extension.of(current_app)
    extra = {name: request.form.get(name, "") for name in (added.form_fields if added else ())}
    form = {name: request.form.get(name, "") for name in FORM_FIELDS}
    try:
        body = TicketIn.model_validate({**form, "user": form["user"].strip() or None})
        user, fields = added.file(extra, body.user) if added else (body.user, {})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _index({**form, **extra}, problems, 400)
    except BadRequestError as exc:
        return _index({**form, **extra}, [str(exc)], 400)
    ticket, run_id = intake.file_desk_ticket(
        _svc().context, body.summary, body.description, body.reporter, user, fields
    )
    flash(f"Filed {ticket.key}; connbot is on it.", "ok")
    return redirect(url_for("desk.run_page", run_id=run_id), 303)


def _ticket(s: Session, key: str) -> Ticket:
    ticket = s.scalars(select(Ticket).where(Ticket.key == key)).first()
    if ticket is None:
        raise NotFoundError(f"no ticket {key[:64]!r}")
    return ticket


@desk.get("/tickets/<key>")
def ticket_page(key: str) -> ResponseReturnValue:
    svc = _svc()
    with svc.store.tx() as s:
        ticket = _ticket(s, key)
        run_ids = [r.id for r in ticket.runs]
        prompt = s.scalars(
            select(Prompt)
            .where(Prompt.run_id.in_(run_ids), Prompt.state == PromptState.OPEN)
            .order_by(Prompt.created_at)
        ).first()
        system = svc.tickets.get(ticket.source)
        return render_template(
            "ticket.html",
            ticket=ticket,
            row=ticket_row(ticket),
            prompt=_card(prompt) if prompt else None,
            name=session.get("name", ""),
            link=system.link(ticket_ref(ticket)) if system else None,
            acts=system is not None,
            marker=secrets.token_urlsafe(18),
        )


AGENT_ACTIONS = ("comment", "close", "reassign")
_MARKER = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@desk.post("/tickets/<key>/<act>")
def agent_action(key: str, act: str) -> ResponseReturnValue:
    """An agent comments on, closes or reassigns a ticket, through the ticket system it lives in (the
    desk's own store, or Jira). The form's one-time marker makes a double submit write once."""
    if act not in AGENT_ACTIONS:
        raise NotFoundError(f"no ticket action {act[:32]!r}; there are {', '.join(AGENT_ACTIONS)}")
    svc = _svc()
    back = url_for("desk.ticket_page", key=key)
    who = g.get("user") or request.form.get("name", "").strip()[:255]
    text = request.form.get("text", "").strip()
    marker = request.form.get("marker", "")
    if not _MARKER.match(marker):
        raise BadRequestError("marker: the form's one-time marker is missing; reload the page and try again")
    if len(text) > prompts.MAX_TEXT:
        raise BadRequestError(f"text: longer than {prompts.MAX_TEXT} characters")
    if not who:
        flash("Give your name so the ticket says who wrote it.", "error")
        return redirect(back, 303)
    if act == "comment" and not text:
        flash("Write the comment first.", "error")
        return redirect(back, 303)
    level = 0
    if act == "reassign":
        level = _level(request.form.get("level", ""))
    session["name"] = who
    with svc.store.tx() as s:
        ticket = _ticket(s, key)
        ref = ticket_ref(ticket)
    system = svc.tickets.get(ref.source)
    if system is None:
        raise BadRequestError(f"the ticket system {ref.source!r} of {ref.key} is not configured")
    heading = {
        "comment": f"Comment from {who}",
        "close": f"Closed by {who}",
        "reassign": f"Handed to level {level} by {who}",
    }[act]
    note = Note(heading=heading, lines=[text] if text else [])
    try:
        if act == "close":
            system.close(ref, note, f"agent:{marker}")
        elif act == "reassign":
            system.escalate(ref, level, note, f"agent:{marker}")
        else:
            system.comment(ref, note, f"agent:{marker}")
    except AdapterError as exc:
        flash(f"{ref.key}: the {ref.source} ticket system refused: {str(exc)[:300]}", "error")
        return redirect(back, 303)
    with svc.store.tx() as s:  # the list shows what the ticket system now says
        ticket = _ticket(s, key)
        ticket.updated_at = svc.context.clock()
        if act == "close":
            ticket.status = "closed"
        elif act == "reassign":
            ticket.level, ticket.queue = level, f"Level {level}"
    done = {"comment": "commented", "close": "closed", "reassign": f"handed to level {level}"}[act]
    flash(f"{ref.key}: {done}.", "ok")
    return redirect(back, 303)


def _level(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 9:
        raise BadRequestError(f"level: expected a level from 1 to 9, got {value[:16]!r}")
    return int(value)


@dataclass(frozen=True)
class Card:
    """An open prompt as the desk shows it: what every channel shows, and the run, when it was asked
    and the decisive finding: the step that led to the question, or, where the playbook decided on
    findings just before it, the check before that decision (a decision finds nothing itself). A
    decision on the leading cause alone, or for want of one, has none: the question states the
    diagnosis, and the last check before it decided nothing."""

    view: PromptView
    run: int
    asked_at: dt.datetime
    finding: StepRow | None


def _card(prompt: Prompt) -> Card:
    svc = _svc()
    pb = svc.playbooks.of(prompt.run)
    shown = view(prompt, svc.tickets, pb)
    steps = pb.steps
    found = [r for r in shown.found if r.step not in steps or not steps[r.step].is_route]
    last = shown.found[-1] if shown.found else None
    if last is not None and last.step in steps and steps[last.step].is_route:
        taken = steps[last.step].route_taken(last.outcome)
        if taken is None or not taken.facts:
            found = []
    return Card(shown, prompt.run_id, prompt.created_at, found[-1] if found else None)


@desk.get("/prompts")
def prompts_page() -> ResponseReturnValue:
    svc = _svc()
    with svc.store.tx() as s:
        rows = s.scalars(
            select(Prompt)
            .where(Prompt.state == PromptState.OPEN)
            .order_by(Prompt.level.desc(), Prompt.created_at)
        )
        cards = [_card(p) for p in rows]
    levels = [(level, list(group)) for level, group in groupby(cards, key=lambda c: c.view.level)]
    return render_template("prompts.html", levels=levels, name=session.get("name", ""))


@desk.post("/prompts/<prompt_id>/answer")
def answer_prompt(prompt_id: str) -> ResponseReturnValue:
    who = g.get("user") or request.form.get("name", "").strip()
    back = _local(request.form.get("next"), url_for("desk.prompts_page"))
    if not who:
        flash("Give your name so the ticket says who answered.", "error")
        return redirect(back, 303)
    session["name"] = who
    won, data = answer(
        prompt_id, request.form.get("answer", ""), request.form.get("text") or None, who, Via.DESK
    )
    if won:
        label = next((o["label"] for o in data["options"] if o["value"] == data["answer"]), data["answer"])
        flash(f"{data['ticket']}: answered “{label}”. connbot goes on.", "ok")
    else:
        flash(f"{data['ticket']}: this question was {already(data)}.", "error")
    return redirect(back, 303)


@desk.get("/runs/<int:run_id>")
def run_page(run_id: int) -> ResponseReturnValue:
    context = _run_context(run_id)
    return render_template("run.html", **context)


@desk.get("/runs/<int:run_id>/live")
def run_live(run_id: int) -> ResponseReturnValue:
    """The live part of a run page, for the page's polling script."""
    context = _run_context(run_id)
    return jsonify(
        state=context["run"].state,
        done=context["done"],
        version=context["version"],
        html=context["live"],
        open_prompts=open_prompts(),
    )


def _run_context(run_id: int) -> dict[str, Any]:
    svc = _svc()
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        steps = [step_dict(r) for r in run.steps]
        current = run.step if run.state != RunState.ENDED else None
        pb = svc.playbooks.of(run)  # the version the run follows
        path = [r["step"] for r in steps] + ([current] if current else [])
        trail = svg.Trail(path=path, said={r["step"]: r["said"] for r in steps}, current=current)
        prompt = s.scalars(
            select(Prompt).where(Prompt.run_id == run.id, Prompt.state == PromptState.OPEN)
        ).first()
        pending = s.scalar(
            select(func.count())
            .select_from(Effect)
            .where(Effect.run_id == run.id, Effect.state == EffectState.PENDING)
        )
        context: dict[str, Any] = {
            "run": run,
            "ticket": ticket_row(run.ticket),
            "steps": steps,
            "graph": svg.playbook_graph(pb, trail),
            "path_graph": svg.playbook_graph(pb, trail, path_only=True),
            "step_title": pb.steps[current].title if current in pb.steps else current,
            "prompt": _card(prompt) if prompt else None,
            "prompt_id": prompt.id if prompt else None,
            "failed_effects": [e for e in run.effects if e.state == EffectState.FAILED],
            "rerun_steps": [(i, st.title) for i, st in svc.playbooks.current().playbook.steps.items()],
            "name": session.get("name", ""),
            "done": run.state == RunState.ENDED and not pending,
            "sla": sla_list(run.ticket, utcnow()),
            **diagnosis_dict(svc.playbooks.rules, run.facts),
        }
        context["live"] = Markup(render_template("_run_live.html", **context))  # autoescaped already
    context["version"] = hashlib.sha256(context["live"].encode()).hexdigest()[:16]
    return context


@desk.get("/dashboard")
def dashboard_page() -> ResponseReturnValue:
    svc = _svc()
    with svc.store.tx() as s:
        stats = dashboard.compute(s, svc.context.clock().date())
    per_day = svg.columns([(d.strftime("%b %d"), n) for d, n in stats.per_day], "runs per day")
    ends = svg.bars(
        [(name, n, f"{n} ({stats.share(n):.0%})") for name, n in stats.ends.items()], "runs by end"
    )
    resolved = svg.bars([(name, n, str(n)) for name, n in stats.resolved_by], "tickets resolved by step")
    return render_template("dashboard.html", stats=stats, per_day=per_day, ends=ends, resolved=resolved)


@desk.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = _local(request.values.get("next"), url_for("desk.index"))
    if request.method == "POST":
        name = _access().verify(request.form.get("name", "").strip(), request.form.get("password", ""))
        if name:
            session.clear()
            session["sid"] = _access().open_session(name)
            return redirect(target, 303)
        flash("Wrong name or password.", "error")
        return render_template("login.html", next=target), 401
    return render_template("login.html", next=target)


@desk.post("/logout")
def logout() -> ResponseReturnValue:
    _access().close_session()
    return redirect(url_for("desk.login"), 303)

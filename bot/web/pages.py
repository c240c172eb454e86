"""The desk's pages. They read the store and call the same core functions as the JSON API:
filing goes through `intake.file_desk_ticket`, answering through `bot.web.api.answer`."""

from __future__ import annotations

import hashlib
import json
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

from bot.errors import BadRequestError, NotFoundError
from bot.runs import intake
from bot.runs.prompts import Via, view
from bot.services import Services
from bot.state.models import Effect, EffectState, Prompt, PromptState, Run, RunState, Ticket
from bot.web import dashboard, extension, svg
from bot.web.api import TicketIn, answer
from bot.web.auth import Access, csrf_ok
from bot.web.current import services_of
from bot.web.views import step_dict, ticket_row

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
def _check_csrf() -> ResponseReturnValue | None:
    if request.method == "POST" and not csrf_ok():
        return render_template(
            "error.html",
            status=400,
            message=(
                "The form's security token is missing or out of date. Go back, reload the page and try again."
            ),
        ), 400
    return None


@desk.context_processor
def _common() -> dict[str, Any]:
    with _svc().store.tx() as s:
        open_prompts = s.scalar(
            select(func.count()).select_from(Prompt).where(Prompt.state == PromptState.OPEN)
        )
    return {
        "open_prompts": open_prompts,
        "user": g.get("user"),
        "login_required": _access().login_required(),
        "duration": dashboard.duration,
        "extension": extension.of(current_app),
    }


@desk.errorhandler(NotFoundError)
def _not_found(exc: NotFoundError) -> ResponseReturnValue:
    return render_template("error.html", status=404, message=str(exc)), 404


@desk.errorhandler(BadRequestError)
def _bad_request(exc: BadRequestError) -> ResponseReturnValue:
    return render_template("error.html", status=exc.status, message=str(exc)), exc.status


@desk.get("/")
def index() -> ResponseReturnValue:
    added = extension.of(current_app)
    return _index(dict(added.form_defaults) if added else {}, [])


def _index(form: dict[str, str], problems: list[str], status: int = 200) -> ResponseReturnValue:
    with _svc().store.tx() as s:
        tickets = [ticket_row(t) for t in dashboard.recent_tickets(s, 200)]
    return render_template("index.html", tickets=tickets, form=form, problems=problems), status


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


@desk.get("/tickets/<key>")
def ticket_page(key: str) -> ResponseReturnValue:
    with _svc().store.tx() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.key == key)).first()
        if ticket is None:
            raise NotFoundError(f"no ticket {key!r}")
        return render_template("ticket.html", ticket=ticket, row=ticket_row(ticket))


@desk.get("/prompts")
def prompts_page() -> ResponseReturnValue:
    svc = _svc()
    with svc.store.tx() as s:
        rows = s.scalars(select(Prompt).where(Prompt.state == PromptState.OPEN).order_by(Prompt.created_at))
        views = [view(p, svc.tickets) for p in rows]
    return render_template("prompts.html", prompts=views, name=session.get("name", ""))


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
        by = f" by {data['answered_by']}" if data["answered_by"] else ""
        flash(f"{data['ticket']}: this question was already {data['state']}{by}.", "error")
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
        state=context["run"].state, done=context["done"], version=context["version"], html=context["live"]
    )


def _run_context(run_id: int) -> dict[str, Any]:
    svc = _svc()
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        steps = [step_dict(r) for r in run.steps]
        current = run.step if run.state != RunState.ENDED else None
        path = [r["step"] for r in steps] + ([current] if current else [])
        trail = svg.Trail(path=path, outcomes={r["step"]: r["outcome"] for r in steps}, current=current)
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
            "graph": svg.playbook_graph(svc.playbook, trail),
            "step_title": svc.playbook.steps[current].title if current in svc.playbook.steps else current,
            "prompt": view(prompt, svc.tickets) if prompt else None,
            "name": session.get("name", ""),
            "done": run.state == RunState.ENDED and not pending,
            "evidence": lambda e: json.dumps(e, indent=2, sort_keys=True),
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

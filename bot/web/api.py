"""The JSON API under /api: file desk tickets, read tickets and runs, answer prompts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from bot.errors import BadRequestError, NotFoundError
from bot.runs import intake, prompts
from bot.runs.prompts import Via
from bot.services import Services
from bot.state.models import Event, Prompt, PromptState, Run, Ticket
from bot.web import jsonbody, worklist
from bot.web.current import services_of
from bot.web.views import already, event_dict, prompt_dict, run_dict, ticket_dict

api = Blueprint("api", __name__, url_prefix="/api")


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    summary: str = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=32767)
    reporter: str = Field("", max_length=255)
    user: str | None = Field(None, max_length=64, description="the user's extension or SIP username")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    answer: str = Field(min_length=1, max_length=64)
    text: str | None = Field(None, max_length=prompts.MAX_TEXT)
    by: str | None = Field(
        None, min_length=1, max_length=255, description="who answers; a logged-in desk user's name wins"
    )


def _limit() -> int:
    limit = request.args.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        raise BadRequestError("limit must be a whole number from 1 to 500")
    return int(limit)


def parse(model: type[BaseModel]) -> Any:
    """The request's JSON body as `model`, or a 400 naming every problem."""
    if not request.is_json:
        raise BadRequestError("expected a JSON object body (Content-Type: application/json)")
    data = jsonbody.loads(request.get_data(cache=False))
    if not isinstance(data, dict):
        raise BadRequestError("expected a JSON object body (Content-Type: application/json)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise BadRequestError("; ".join(problems)) from None


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255 and key.isascii() and key.isprintable()):
        raise BadRequestError("Idempotency-Key: expected 1 to 255 printable ASCII characters")
    return key


@api.post("/tickets")
def file_ticket() -> ResponseReturnValue:
    """File a desk ticket. A request carrying an `Idempotency-Key` header already used is answered
    200 with the ticket the first one filed (a client retrying after a lost answer files once)."""
    key = _idempotency_key()
    body: TicketIn = parse(TicketIn)
    svc = services_of(current_app)
    earlier = intake.filed_with(svc.context, key) if key is not None else None
    if earlier is None:
        try:
            ticket, run_id = intake.file_desk_ticket(
                svc.context, body.summary, body.description, body.reporter, body.user, {}, key
            )
            return jsonify(key=ticket.key, run=run_id, url=f"/tickets/{ticket.key}"), 201
        except IntegrityError:  # the same key, filed at the same moment by a twin request
            earlier = intake.filed_with(svc.context, key) if key is not None else None
            if earlier is None:
                raise
    return jsonify(key=earlier[0], run=earlier[1], url=f"/tickets/{earlier[0]}"), 200


def find_tickets(svc: Services, args: MultiDict[str, str]) -> worklist.Page:
    """The page of the ticket list these URL parameters ask for (the desk's list and the API's)."""
    configured = [i.name for i in svc.fleet.directory.instances] if svc.fleet else []
    with svc.store.tx() as s:
        pbxs = worklist.known_pbxs(s, configured)
        return worklist.find(s, worklist.parse(args, pbxs), svc.context.clock(), pbxs)


@api.get("/tickets")
def list_tickets() -> ResponseReturnValue:
    return jsonify(find_tickets(services_of(current_app), request.args).as_json())


@api.get("/tickets/<key>")
def get_ticket(key: str) -> ResponseReturnValue:
    with services_of(current_app).store.tx() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.key == key)).first()
        if ticket is None:
            raise NotFoundError(f"no ticket {key!r}")
        return jsonify(ticket_dict(ticket))


@api.get("/events")
def list_events() -> ResponseReturnValue:
    """Stored inbound events, newest first; `?state=quarantined` lists those set aside for good."""
    state = request.args.get("state", "all")
    if state not in {"all", "pending", "quarantined"}:
        raise BadRequestError("state must be one of all, pending, quarantined")
    query = select(Event).order_by(Event.id.desc()).limit(_limit())
    if state == "pending":
        query = query.where(Event.processed_at.is_(None))
    elif state == "quarantined":
        query = query.where(Event.outcome.startswith(intake.QUARANTINED, autoescape=True))
    with services_of(current_app).store.tx() as s:
        return jsonify(events=[event_dict(e) for e in s.scalars(query)])


@api.get("/runs")
def list_runs() -> ResponseReturnValue:
    with services_of(current_app).store.tx() as s:
        runs = s.scalars(select(Run).order_by(Run.id.desc()).limit(_limit()))
        return jsonify(runs=[run_dict(r, steps=False) for r in runs])


@api.get("/runs/<int:run_id>")
def get_run(run_id: int) -> ResponseReturnValue:
    svc = services_of(current_app)
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        return jsonify(run_dict(run, rules=svc.playbooks.rules))


@api.get("/prompts")
def list_prompts() -> ResponseReturnValue:
    state = request.args.get("state", PromptState.OPEN)
    if state not in set(PromptState):
        raise BadRequestError(f"state must be one of {', '.join(PromptState)}")
    with services_of(current_app).store.tx() as s:
        rows = s.scalars(select(Prompt).where(Prompt.state == state).order_by(Prompt.created_at))
        return jsonify(prompts=[prompt_dict(p) for p in rows])


def answer(prompt_id: str, choice: str, text: str | None, who: str, via: Via) -> tuple[bool, dict[str, Any]]:
    """Answer a prompt from the desk's pages or the API: first answer wins, and a winning answer wakes
    the run. Returns whether this answer won and the prompt as it now stands."""
    ctx = services_of(current_app).context
    with ctx.store.tx() as s:
        result = prompts.answer_prompt(ctx, s, prompt_id, choice, text, who, via)
        return result.won, prompt_dict(result.prompt)


@api.post("/prompts/<prompt_id>/answer")
def answer_prompt(prompt_id: str) -> ResponseReturnValue:
    body: AnswerIn = parse(AnswerIn)
    who = g.get("user") or body.by
    if not who:
        raise BadRequestError("by: who answers is missing (or log in)")
    won, data = answer(prompt_id, body.answer, body.text, who, Via.API)
    if not won:
        return jsonify(
            error="Conflict",
            message=already(data),
            prompt=data,
        ), 409
    return jsonify(data)

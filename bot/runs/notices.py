"""What people see of an incident and what they do with it: its one message in each prompt channel
(`show`, edited in place as the incident changes) and the reminders in its thread, its parent issue
(created, linked to every ticket, resolved), and a person's actions (`act`: Restored, Not a PBX
problem, Assign to me, a parent issue key), taken from Slack, the desk, the API and the CLI alike."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.runs import incidents
from bot.runs.context import RunContext
from bot.runs.outbox import RETRIED
from bot.runs.prompts import Via
from bot.state.models import Effect, EffectState, Incident, IncidentState, Run, RunState, Ticket
from integrations.base import AdapterError
from integrations.prompts import IncidentView
from integrations.tickets import Note, TicketRef, answerer

log = logging.getLogger(__name__)


# -- what people see: the message, reminders, the parent issue


def view(ctx: RunContext, s: Session, inc: Incident) -> IncidentView:
    tickets, users, closed = incidents.counts(s, inc.id)
    parent_url = None
    if inc.parent_key:
        system = ctx.tickets.get("jira")
        parent_url = system.link(TicketRef(source="jira", key=inc.parent_key)) if system else None
    return IncidentView(
        id=inc.id,
        pbx=inc.pbx,
        title=inc.title,
        statement=inc.statement,
        state=inc.state,
        opened_at=inc.opened_at,
        tickets=tickets,
        users=users,
        closed_tickets=closed,
        health=inc.health,
        checked_at=inc.checked_at,
        owner=inc.owner,
        owner_via=inc.owner_via,
        restored_by=inc.restored_by,
        restored_via=inc.restored_via,
        dismissed_by=inc.dismissed_by,
        dismissed_via=inc.dismissed_via,
        parent_key=inc.parent_key,
        parent_url=parent_url,
        url=f"{ctx.desk_url}/incidents/{inc.id}",
        summary=inc.close_reason,
        channel=ctx.channel_for(inc.pbx or None),
        message=dict(inc.message),
    )


def show(ctx: RunContext, incident_id: int) -> None:
    """Create the parent issue if there is none yet, and bring the message up to the incident's
    version. A failure is logged and tried again at the next sweep."""
    open_parent(ctx, incident_id)
    with ctx.store.tx() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        if inc.shown_version >= inc.version:
            return
        version = inc.version
        shown = view(ctx, s, inc)
        repeat = bool(inc.message.get("attempted"))
        if not repeat:
            inc.message = {**inc.message, "attempted": True}
    refs: dict[str, Any] = {}
    for channel in ctx.channels:
        try:
            refs.update(channel.show_incident(shown.model_copy(update={"repeat": repeat})) or {})
        except AdapterError as exc:
            log.warning(
                "incident %s: the %s message could not be updated: %s", incident_id, channel.name, exc
            )
            return
    with ctx.store.tx() as s:
        inc = incidents.locked(ctx, s, incident_id)
        inc.message = {**inc.message, **refs}
        inc.shown_version = max(inc.shown_version, version)


def remind(ctx: RunContext, incident_id: int) -> None:
    now = ctx.clock()
    with ctx.store.tx() as s:
        inc = incidents.locked(ctx, s, incident_id)
        if inc.remind_at is None or inc.remind_at > now:
            return
        inc.remind_at = now + dt.timedelta(seconds=ctx.incidents.remind)
        shown = view(ctx, s, inc)
    for channel in ctx.channels:
        try:
            channel.remind_incident(shown)
        except AdapterError as exc:
            log.warning("incident %s: no reminder in %s: %s", incident_id, channel.name, exc)


def _marker(inc: Incident, what: str) -> str:
    return f"connbot:incident:{inc.id}:{inc.opened_at:%Y%m%dT%H%M%S}:{what}"


def open_parent(ctx: RunContext, incident_id: int) -> None:
    with ctx.store.tx() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        if inc.parent_key or inc.parent_error or inc.state == IncidentState.CLOSED:
            return  # made, refused for good (its tickets get plain comments), or too late
        summary = f"Incident {inc.id}: {inc.title} on {incidents.where(inc.pbx)}"
        note = Note(
            heading=summary,
            lines=[f"{inc.statement}.", f"Opened by {inc.opened_by} at {inc.opened_at:%Y-%m-%d %H:%M} UTC."],
            next="connbot links every affected ticket here and resolves this issue when the PBX is back.",
        )
        marker = _marker(inc, "parent")
    for system in ctx.tickets.values():
        try:
            key = system.open_parent(summary, note, marker)
        except RETRIED as exc:  # down or restarting: the next sweep tries again
            log.warning("incident %s: no parent issue in %s yet: %s", incident_id, system.source, exc)
            return
        except AdapterError as exc:  # refused for good: its tickets get plain comments
            log.error("incident %s: no parent issue can be made in %s: %s", incident_id, system.source, exc)
            with ctx.store.tx() as s:
                incidents.locked(ctx, s, incident_id).parent_error = str(exc)[:1000]
                _wake_children(ctx, s, incident_id)
            return
        if key:
            set_parent(ctx, incident_id, key)
            return


def set_parent(ctx: RunContext, incident_id: int, key: str) -> None:
    """Give the incident its parent issue: the tickets whose joining is still to be said on them are
    linked as it is said; those already told are linked now."""
    with ctx.store.tx() as s:
        inc = incidents.locked(ctx, s, incident_id)
        inc.parent_key, inc.parent_resolved, inc.version = key, False, inc.version + 1
        for run in s.scalars(select(Run).where(Run.incident_id == incident_id)):
            told = s.scalar(
                select(Effect.state).where(Effect.key == f"run:{run.id}:incident:{inc.id}:joined")
            )
            if told != EffectState.PENDING:
                incidents.joined(s, run, inc, None, f"linked:{key}")
        _wake_children(ctx, s, incident_id)


def _wake_children(ctx: RunContext, s: Session, incident_id: int) -> None:
    """Wake the incident's held runs, so their joining effects are made (with what changed): now, not
    when they are due again after "the parent issue is not made yet"."""
    held = select(Run.id).where(Run.incident_id == incident_id, Run.state == RunState.HELD)
    s.execute(
        update(Effect)
        .where(Effect.run_id.in_(held), Effect.kind == "incident.join", Effect.state == EffectState.PENDING)
        .values(retry_at=None)
    )
    for run_id in s.scalars(held):
        ctx.waker.advance_after_commit(s, run_id)


def resolve_parent(ctx: RunContext, incident_id: int) -> None:
    with ctx.store.tx() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        if not inc.parent_key or inc.parent_resolved or inc.state != IncidentState.CLOSED:
            return
        child = s.scalars(select(Ticket).join(Run).where(Run.incident_id == incident_id).limit(1)).first()
        source = child.source if child else "jira"
        ref = TicketRef(source=source, key=inc.parent_key)
        note = Note(heading=f"Incident {inc.id} is over", lines=[inc.close_reason])
        marker = _marker(inc, "resolved")
    system = ctx.tickets.get(source)
    try:
        if system is not None:
            system.close(ref, note, marker)
    except RETRIED as exc:
        log.warning("incident %s: the parent issue %s is not resolved yet: %s", incident_id, ref.key, exc)
        return
    except AdapterError as exc:  # refused for good: said once, not tried again
        log.error("incident %s: the parent issue %s cannot be resolved: %s", incident_id, ref.key, exc)
    with ctx.store.tx() as s:
        inc = incidents.locked(ctx, s, incident_id)
        inc.parent_resolved = True


# -- what people do with an incident

ACTIONS = ("restored", "dismiss", "assign")
_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,30}-[1-9][0-9]{0,9}$")


class IncidentActionError(ValueError):
    """A person's action on an incident that cannot be taken (unknown incident, closed, bad value)."""


def act(ctx: RunContext, incident_id: int, action: str, who: str, via: Via, value: str = "") -> str:
    """A person's action on an incident (the desk, Slack, the API, the CLI: `via`); what it did, in a
    sentence.

    restored: the PBX is back, connbot checks now and recovers if the check agrees; dismiss: not a
    PBX problem, every held ticket is checked on its own; assign: `who` takes it; parent: `value`
    is an existing issue key to link every ticket to."""
    who = who.strip()[:255]
    if not who:
        raise IncidentActionError("say who acts (a name)")
    with ctx.store.tx() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise IncidentActionError(f"no incident {incident_id}")
        if action == "parent":
            key = value.strip().upper()
            if not _KEY.match(key):
                raise IncidentActionError(f"{value[:40]!r} is not an issue key (like OPS-12)")
        elif action not in ACTIONS:
            raise IncidentActionError(
                f"unknown action {action[:40]!r}: one of {', '.join([*ACTIONS, 'parent'])}"
            )
        if inc.state != IncidentState.OPEN and action != "parent":
            raise IncidentActionError(f"incident {incident_id} is {inc.state}, not open")
        inc = incidents.locked(ctx, s, incident_id)
        inc.version += 1
        name = answerer(who, via.value)  # as the tickets name them: `W111 in Slack`, `Carol`
        if action == "restored":
            inc.restored_by, inc.restored_via, inc.next_check_at = who, via.value, ctx.clock()
            done = (
                f"{name} said the PBX is restored: connbot checks it now and closes the tickets if it agrees."
            )
        elif action == "dismiss":  # no longer open: its tickets are released at the next sweep
            inc.dismissed_by, inc.dismissed_via = who, via.value
            inc.state = IncidentState.RECOVERING
            done = (
                f"{name} said incident {incident_id} is not a PBX problem: "
                "its tickets are checked on their own again."
            )
        elif action == "assign":
            inc.owner, inc.owner_via = who, via.value
            done = f"Incident {incident_id} is taken by {name}."
        else:
            done = f"Incident {incident_id}'s tickets are linked to {key}."
    if action == "parent":
        set_parent(ctx, incident_id, key)
    log.info("incident %s: %s", incident_id, done)
    return done

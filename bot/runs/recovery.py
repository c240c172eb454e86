"""Tending incidents: the periodic health check of every PBX, the re-checks of a failing one (with
backoff), its recovery, its one message in each prompt channel and its parent issue.

Every worker's sweep calls `tend`. A lease on each incident (and a due time on each instance's
periodic check, claimed with one UPDATE) makes one worker do each at a time. Recovery re-checks the
held runs' apps in bounded parallel batches (`IncidentPolicy.batch`), each under the run's own lease
and committed with its result, so a worker killed mid-batch leaves the unsettled runs held for the
next one: none is settled twice, none is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import distinct, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot.runs import endings, identify, incidents, records
from bot.runs.context import RunContext
from bot.runs.redact import redact, redact_facts
from bot.state.models import Effect, EffectState, Incident, IncidentState, PbxHealth, Run, RunState, Ticket
from bot.state.store import rows_updated
from integrations.base import ActionInput, AdapterError, TransientError
from integrations.prompts import IncidentView
from integrations.tickets import Note, TicketRef

log = logging.getLogger(__name__)


def _owner(what: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{what}:{threading.get_ident()}"


def tend(ctx: RunContext) -> dict[str, int]:
    """The periodic checks that are due, then every incident that is not closed (or whose parent
    issue is not resolved yet)."""
    counts = {"checked": 0, "incidents": 0}
    if not ctx.incidents.enabled:
        return counts
    counts["checked"] = _periodic(ctx)
    with ctx.store.tx() as s:
        ids = list(
            s.scalars(
                select(Incident.id)
                .where(
                    or_(
                        Incident.state != IncidentState.CLOSED,
                        Incident.shown_version < Incident.version,
                        Incident.parent_key.is_not(None) & ~Incident.parent_resolved,
                    )
                )
                .order_by(Incident.id)
            )
        )
    for incident_id in ids:
        owner = _owner("incident")
        if not _acquire(ctx, incident_id, owner):
            continue
        try:
            _tend(ctx, incident_id, owner)
            counts["incidents"] += 1
        finally:
            with ctx.store.tx() as s:
                s.execute(
                    update(Incident)
                    .where(Incident.id == incident_id, Incident.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None)
                )
    return counts


def _acquire(ctx: RunContext, incident_id: int, owner: str) -> bool:
    now = ctx.clock()
    with ctx.store.tx() as s:
        return bool(
            rows_updated(
                s,
                update(Incident)
                .where(Incident.id == incident_id)
                .where(or_(Incident.lease_until.is_(None), Incident.lease_until < now))
                .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=ctx.limits.lease_seconds)),
            )
        )


def _locked(ctx: RunContext, s: Session, incident_id: int) -> Incident:
    """The incident, locked and read afresh, for a transaction that writes it."""
    if ctx.store.engine.dialect.name == "sqlite":  # take the write lock now (see Store.held)
        s.execute(update(Incident).where(Incident.id == incident_id).values(version=Incident.version))
    inc = s.get(Incident, incident_id, with_for_update=True, populate_existing=True)
    assert inc is not None
    return inc


# -- the periodic check of every instance


def _periodic(ctx: RunContext) -> int:
    every = ctx.incidents.health_every
    done = 0
    for name in ctx.instances() if every else ():
        now = ctx.clock()
        if not _claim(ctx, name, now, now + dt.timedelta(seconds=every)):
            continue
        health = incidents.check(ctx, name)
        with ctx.store.tx() as s:
            row = s.get(PbxHealth, name)
            assert row is not None
            row.checked_at, row.ok = ctx.clock(), health.healthy
            row.detail = {"health": {"ok": health.healthy, "reason": health.summary}}
            if health.cause is not None:
                c = health.cause
                incidents.open_incident(
                    ctx, s, name, c.id, c.title, c.found(), health.facts, "the periodic health check"
                )
        done += 1
    return done


def _claim(ctx: RunContext, name: str, now: dt.datetime, next_due: dt.datetime) -> bool:
    """Take the instance's periodic check when it is due (one worker wins)."""
    with ctx.store.tx() as s:
        if s.get(PbxHealth, name) is None:
            try:
                with s.begin_nested():
                    s.add(
                        PbxHealth(
                            name=name,
                            checked_at=now,
                            ok=False,
                            detail={"health": {"ok": False, "reason": "being checked"}},
                            due_at=next_due,
                        )
                    )
                return True
            except IntegrityError:
                return False
        due = or_(PbxHealth.due_at.is_(None), PbxHealth.due_at <= now)
        return bool(
            rows_updated(s, update(PbxHealth).where(PbxHealth.name == name, due).values(due_at=next_due))
        )


# -- one incident


def _tend(ctx: RunContext, incident_id: int, owner: str) -> None:
    policy = ctx.incidents
    with ctx.store.tx() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        state, pbx = inc.state, inc.pbx
        due = inc.next_check_at <= ctx.clock() or inc.restored_by is not None
        dismissed = inc.dismissed_by is not None
    if state == IncidentState.OPEN and dismissed:
        with ctx.store.tx() as s:
            inc = _locked(ctx, s, incident_id)
            inc.state, inc.version = IncidentState.RECOVERING, inc.version + 1
        state = IncidentState.RECOVERING
    elif state == IncidentState.OPEN and due:
        health = incidents.check(ctx, pbx)
        now = ctx.clock()
        with ctx.store.tx() as s:
            inc = _locked(ctx, s, incident_id)
            inc.facts = health.facts or inc.facts
            inc.checked_at, inc.healthy, inc.version = now, health.healthy, inc.version + 1
            if health.healthy or (not health.known and inc.restored_by):
                inc.health = health.summary if health.known else f"{inc.restored_by} said it is restored"
                inc.state, inc.recovered_at = IncidentState.RECOVERING, now
            else:
                inc.health = health.summary
                if inc.restored_by:
                    inc.health = (
                        f"{inc.restored_by} said it is restored, but the check at {now:%H:%M:%S} UTC "
                        f"still finds: {health.summary}"
                    )[:1000]
                    inc.restored_by = None
                wait = min(policy.check_max, policy.check * 2**inc.checks)
                inc.checks += 1
                inc.next_check_at = now + dt.timedelta(seconds=wait)
            state = inc.state
    show(ctx, incident_id)
    if state == IncidentState.OPEN:
        _remind(ctx, incident_id)
    elif state == IncidentState.RECOVERING:
        _recover(ctx, incident_id, owner)
        show(ctx, incident_id)
    else:
        _resolve_parent(ctx, incident_id)


def _recover(ctx: RunContext, incident_id: int, owner: str) -> None:
    """Settle the held runs, a batch at a time, then close the incident."""
    batch = ctx.incidents.batch
    while True:
        now = ctx.clock()
        with ctx.store.tx() as s:
            s.execute(
                update(Incident)
                .where(Incident.id == incident_id, Incident.lease_owner == owner)
                .values(lease_until=now + dt.timedelta(seconds=ctx.limits.lease_seconds))
            )
            held = list(
                s.scalars(
                    select(Run.id)
                    .where(Run.incident_id == incident_id, Run.state == RunState.HELD)
                    .order_by(Run.id)
                    .limit(batch)
                )
            )
        if not held:
            break
        with ThreadPoolExecutor(max_workers=len(held), thread_name_prefix="connbot-recheck") as pool:
            settled = list(pool.map(lambda run_id: _settle(ctx, run_id, incident_id), held))
        with ctx.store.tx() as s:
            s.execute(update(Incident).where(Incident.id == incident_id).values(version=Incident.version + 1))
        show(ctx, incident_id)
        if not any(settled):
            return  # their runs are busy (a worker making their effects): the next sweep goes on
    with ctx.store.tx() as s:
        inc = _locked(ctx, s, incident_id)
        inc.state, inc.closed_at, inc.active_key = IncidentState.CLOSED, ctx.clock(), None
        inc.version += 1
        inc.close_reason = _summary(s, inc)
        log.warning("incident %s closed: %s", inc.id, inc.close_reason)
    _resolve_parent(ctx, incident_id)


def _settle(ctx: RunContext, run_id: int, incident_id: int) -> bool:
    """Re-check one held run's app and release the run (closed, or back to its playbook). False
    when another worker holds the run just now."""
    owner = _owner("recheck")
    if not ctx.store.acquire(run_id, owner, ctx.limits.lease_seconds):
        return False
    try:
        with ctx.store.tx() as s:
            run = s.get(Run, run_id, options=[joinedload(Run.ticket)])
            inc = s.get(Incident, incident_id)
            assert run is not None and inc is not None
            if run.state != RunState.HELD or run.incident_id != incident_id:
                return True
            dismissed = inc.dismissed_by is not None
            registry = ctx.registry_for(run.pbx)
            inp = ActionInput(
                ticket_key=run.ticket.key,
                user=run.ticket.user_ref,
                reporter_email=identify.email(run.ticket),
                facts=dict(run.facts),
            )
        rec, facts, registered = None, {}, False
        if not dismissed and registry.available(incidents.RECHECK):
            started = ctx.clock()
            try:
                res = registry.execute(incidents.RECHECK, inp)
                outcome, summary, evidence = res.outcome, res.summary, redact(res.evidence)
                facts, registered = redact_facts(res.facts), res.outcome == incidents.REGISTERED
            except AdapterError as exc:
                outcome, summary, evidence = (
                    "error",
                    f"{incidents.RECHECK} failed: {exc}",
                    {"error": str(exc)},
                )
                facts = redact_facts(exc.facts)
            rec = records.StepRecord(
                "incident_recheck", "auto", outcome, summary, started, ctx.clock(), evidence
            )
        with ctx.store.tx() as s:
            held = ctx.store.held(s, run_id, owner)
            if held is None:
                return False
            inc = s.get(Incident, incident_id)
            assert inc is not None
            endings.release(ctx, s, held, inc, rec, registered, facts)
        return True
    finally:
        ctx.store.release(run_id, owner)


def _summary(s: Session, inc: Incident) -> str:
    """How the incident went, for its message, its parent issue and `incidents show`."""
    tickets, users, closed = counts(s, inc.id)
    if inc.dismissed_by:
        return (
            f"{inc.dismissed_by} said it is not a PBX problem; {tickets} ticket(s) are checked on their own."
        )
    took = _duration((inc.recovered_at or inc.opened_at) - inc.opened_at)
    how = "false alarm: the first check found the PBX healthy" if inc.checks == 0 else f"back after {took}"
    return (
        f"{inc.title} on {incidents.where(inc.pbx)} ({how}); {tickets} ticket(s) from {users} user(s): "
        f"{closed} closed after their app registered again, {tickets - closed} checked on their own."
    )


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def counts(s: Session, incident_id: int) -> tuple[int, int, int]:
    """(tickets, distinct users, tickets closed by the incident's recovery) of an incident."""
    tickets, users = s.execute(
        select(func.count(Run.id), func.count(distinct(func.coalesce(Ticket.user_ref, Ticket.reporter))))
        .join(Ticket, Ticket.id == Run.ticket_id)
        .where(Run.incident_id == incident_id)
    ).one()
    closed = s.scalar(
        select(func.count(Run.id)).where(
            Run.incident_id == incident_id, Run.state == RunState.ENDED, Run.end_kind == "close"
        )
    )
    return int(tickets), int(users), int(closed or 0)


# -- what people see: the message, reminders, the parent issue


def view(ctx: RunContext, s: Session, inc: Incident) -> IncidentView:
    tickets, users, closed = counts(s, inc.id)
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
        restored_by=inc.restored_by,
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
    _open_parent(ctx, incident_id)
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
        inc = _locked(ctx, s, incident_id)
        inc.message = {**inc.message, **refs}
        inc.shown_version = max(inc.shown_version, version)


def _remind(ctx: RunContext, incident_id: int) -> None:
    now = ctx.clock()
    with ctx.store.tx() as s:
        inc = _locked(ctx, s, incident_id)
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


def _open_parent(ctx: RunContext, incident_id: int) -> None:
    with ctx.store.tx() as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        if inc.parent_key or inc.state == IncidentState.CLOSED:
            return
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
        except TransientError as exc:
            log.warning("incident %s: no parent issue in %s yet: %s", incident_id, system.source, exc)
            return
        except AdapterError as exc:  # refused for good: its tickets get plain comments
            log.error("incident %s: no parent issue can be made in %s: %s", incident_id, system.source, exc)
            with ctx.store.tx() as s:
                _locked(ctx, s, incident_id).parent_error = str(exc)[:1000]
                _wake_children(ctx, s, incident_id)
            return
        if key:
            set_parent(ctx, incident_id, key)
            return


def set_parent(ctx: RunContext, incident_id: int, key: str) -> None:
    """Give the incident its parent issue: the tickets whose joining is still to be said on them are
    linked as it is said; those already told are linked now."""
    with ctx.store.tx() as s:
        inc = _locked(ctx, s, incident_id)
        inc.parent_key, inc.parent_resolved, inc.version = key, False, inc.version + 1
        for run in s.scalars(select(Run).where(Run.incident_id == incident_id)):
            told = s.scalar(
                select(Effect.state).where(Effect.key == f"run:{run.id}:incident:{inc.id}:joined")
            )
            if told != EffectState.PENDING:
                incidents.joined(s, run, inc, None, f"linked:{key}")
        _wake_children(ctx, s, incident_id)


def _wake_children(ctx: RunContext, s: Session, incident_id: int) -> None:
    """Wake the incident's held runs, so their joining effects are made (with what changed)."""
    for run_id in s.scalars(select(Run.id).where(Run.incident_id == incident_id, Run.state == RunState.HELD)):
        ctx.waker.advance_after_commit(s, run_id)


def _resolve_parent(ctx: RunContext, incident_id: int) -> None:
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
    except TransientError as exc:
        log.warning("incident %s: the parent issue %s is not resolved yet: %s", incident_id, ref.key, exc)
        return
    except AdapterError as exc:  # refused for good: said once, not tried again
        log.error("incident %s: the parent issue %s cannot be resolved: %s", incident_id, ref.key, exc)
    with ctx.store.tx() as s:
        inc = _locked(ctx, s, incident_id)
        inc.parent_resolved = True


# -- what people do with an incident

ACTIONS = ("restored", "dismiss", "assign")
_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,30}-[1-9][0-9]{0,9}$")


class IncidentActionError(ValueError):
    """A person's action on an incident that cannot be taken (unknown incident, closed, bad value)."""


def act(ctx: RunContext, incident_id: int, action: str, who: str, value: str = "") -> str:
    """A person's action on an incident (the desk, Slack, the API, the CLI); what it did, in a sentence.

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
        inc = _locked(ctx, s, incident_id)
        inc.version += 1
        if action == "restored":
            inc.restored_by, inc.next_check_at = who, ctx.clock()
            done = (
                f"{who} said the PBX is restored: connbot checks it now and closes the tickets if it agrees."
            )
        elif action == "dismiss":
            inc.dismissed_by = who
            done = f"{who} said incident {incident_id} is not a PBX problem: its tickets are checked alone."
        elif action == "assign":
            inc.owner = who
            done = f"Incident {incident_id} is taken by {who}."
        else:
            done = f"Incident {incident_id}'s tickets are linked to {key}."
    if action == "parent":
        set_parent(ctx, incident_id, key)
    log.info("incident %s: %s", incident_id, done)
    return done

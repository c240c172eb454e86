"""Incidents: one PBX instance failing in one way, and the tickets of its users joined to it.

An incident opens when a run's diagnosis leads with a cause the rules mark `incident: true` (a fault
of the PBX itself: Asterisk, its SIP stack, its database, the network in front of it, overload) and
a check of the PBX (`check`, the same checks as the periodic one) confirms it; when the periodic
health check of an instance finds one (`bot.runs.recovery`); or when `IncidentPolicy.threshold`
tickets of one instance report the same app error within the window. At most one is open per
instance and cause. A run of that instance joins the open incident instead of taking its next step:
one comment on its ticket, no checks against the failing PBX, no question of its own; it is held
until the incident's recovery re-checks its app (`bot.runs.recovery`). A run that an incident a
person dismissed ("not a PBX problem") sent back never joins an incident of that PBX and cause
again: it goes on its own way, with people's answers to its questions.

`check` and `confirm` talk to the PBX and run outside any transaction; everything else runs inside
the caller's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import distinct, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.runs.context import RunContext
from bot.runs.outbox import IncidentJoin, add_effect, customer_reply
from bot.runs.redact import redact_facts
from bot.state.models import Incident, IncidentRun, IncidentState, Run, RunState, Ticket
from integrations.base import ActionInput, AdapterError
from integrations.tickets import Note
from playbook.diagnosis import Cause, diagnose

log = logging.getLogger(__name__)

# The app's error as a class, from the finding of the app's last registration error (the threshold).
ERROR_FINDING = "registration_error"
NO_ERROR = "none"
JOINED = "incident_joined"  # the customer's reply template when a request joins an incident
RECHECK = "app.recheck"  # how a held run's app is checked when its PBX is back
REGISTERED = "registered"  # the re-check's outcome when the app registers
BY_COUNT = "reports"  # the cause of an incident opened by the threshold, before a check names one


CHECKS = ("pbx.health", "pbx.check_database", "net.check_path")


@dataclass(frozen=True)
class Health:
    """What one check of a PBX instance found."""

    facts: dict[str, Any]
    summary: str
    known: bool  # at least one check could run
    cause: Cause | None  # the fault of the PBX itself its findings lead with

    @property
    def healthy(self) -> bool:
        return self.known and self.cause is None


def check(ctx: RunContext, pbx: str) -> Health:
    """Check an instance with its own adapters (ARI and its modules, its database, the SIP path)."""
    registry = ctx.registry_for(pbx or None)
    facts: dict[str, Any] = {}
    said: list[str] = []
    for action in CHECKS:
        if not registry.available(action):
            continue
        try:
            res = registry.execute(action, ActionInput(ticket_key=f"check of {where(pbx)}"))
            facts.update(redact_facts(res.facts))
            said.append(res.summary)
        except AdapterError as exc:
            facts.update(redact_facts(exc.facts))
            said.append(f"{action} failed: {exc}")
    cause = incident_cause(ctx, facts) if facts else None
    if cause is not None:
        summary = cause.found()
    elif said:
        summary = "no fault of the PBX found: " + " ".join(said)
    else:
        summary = "connbot has no adapter that can check this PBX"
    return Health(facts, summary[:1000], bool(said), cause)


def instance_of(ctx: RunContext, run: Run) -> str | None:
    """The PBX instance a run's incidents are about: its routed instance, "" for the one PBX of a
    set-up without a directory, None while it has none (no incident can hold it)."""
    if ctx.directory is None:
        return ""
    return run.pbx or None


def where(pbx: str) -> str:
    return f"PBX {pbx}" if pbx else "the PBX"


def incident_cause(ctx: RunContext, facts: Mapping[str, Any]) -> Cause | None:
    """The leading cause of the findings when it is a fault of the PBX itself."""
    lead = diagnose(ctx.playbooks.rules, facts)[0]
    return lead if lead.incident else None


def _may_join(pbx: str, run: str) -> str:
    """SQL saying whether the `incidents` row is an open incident of the instance `pbx` that the run
    `run` may join: not one of the PBX and cause of an incident the run was in that a person dismissed."""
    return (
        f"incidents.state = '{IncidentState.OPEN.value}' AND incidents.pbx = {pbx} "
        "AND NOT EXISTS (SELECT 1 FROM incident_runs "
        "JOIN incidents AS dismissed ON dismissed.id = incident_runs.incident_id "
        f"WHERE incident_runs.run_id = {run} AND dismissed.dismissed_by IS NOT NULL "
        "AND dismissed.pbx = incidents.pbx AND dismissed.cause = incidents.cause)"
    )


def open_for(s: Session, pbx: str, run_id: int) -> Incident | None:
    """The instance's open incident the run may join (the oldest, if several causes are open)."""
    may_join = text(_may_join(":pbx", ":run_id")).bindparams(pbx=pbx, run_id=run_id)
    return s.scalars(select(Incident).where(may_join).order_by(Incident.id).limit(1)).first()


def open_incident(
    ctx: RunContext,
    s: Session,
    pbx: str,
    cause: str,
    title: str,
    statement: str,
    facts: Mapping[str, Any],
    opened_by: str,
) -> Incident:
    """The open incident of the instance and cause: the existing one, or a new one (first check due at
    once, the parent issue and the Slack message made by the next tending)."""
    key = f"{pbx}|{cause}"
    found = s.scalars(select(Incident).where(Incident.active_key == key)).first()
    if found is not None:
        return found
    now = ctx.clock()
    inc = Incident(
        pbx=pbx,
        cause=cause,
        title=title[:200],
        statement=statement[:1000],
        active_key=key,
        opened_by=opened_by[:300],
        facts=dict(facts),
        next_check_at=now,
        opened_at=now,
        remind_at=now + dt.timedelta(seconds=ctx.incidents.remind),
    )
    try:
        with s.begin_nested():
            s.add(inc)
            s.flush()
    except IntegrityError:  # another worker opened it first
        return s.scalars(select(Incident).where(Incident.active_key == key)).one()
    log.warning("incident %s opened on %s: %s (%s)", inc.id, where(pbx), title, opened_by)
    return inc


def name_cause(s: Session, inc: Incident, cause: Cause) -> None:
    """An incident opened by count, now that a check of its PBX names what fails: it says so from now
    on (unless another open incident of the PBX already stands for that cause)."""
    key = f"{inc.pbx}|{cause.id}"
    if s.scalars(select(Incident.id).where(Incident.active_key == key)).first() is not None:
        return
    inc.cause, inc.active_key = cause.id, key
    inc.title, inc.statement = cause.title[:200], cause.found()[:1000]


def join(ctx: RunContext, s: Session, run: Run, inc: Incident, lines: list[str] | None = None) -> None:
    """Hold the run in the incident: one comment on its ticket (with `lines` from before, when it has
    had none yet), a link to the parent issue once there is one, and the incident's message updated."""
    # Counting the child locks the incident row: the parent issue's creation, which links the children
    # it sees, cannot miss this one (it reads `parent_key` after the lock).
    s.execute(update(Incident).where(Incident.id == inc.id).values(version=Incident.version + 1))
    s.refresh(inc)
    run.incident_id, run.state = inc.id, RunState.HELD
    s.add(IncidentRun(incident_id=inc.id, run_id=run.id))
    since = f"{inc.opened_at:%Y-%m-%d %H:%M} UTC"
    joined(
        s,
        run,
        inc,
        Note(
            heading=f"Part of incident {inc.id}: {inc.title} on {where(inc.pbx)}",
            lines=[
                *(lines or []),
                f"{inc.statement} (since {since}).",
                "While the incident is open, its checks of the PBX stand for this ticket's: connbot "
                "asks nobody about this ticket alone.",
            ],
            next="connbot keeps checking the PBX; when it is back it re-checks this user's app "
            "and says so here.",
        ),
    )
    customer_reply(ctx, s, run, JOINED)  # on a service request: the customer hears, in plain words
    ctx.waker.advance_after_commit(s, run.id)  # its effects are made by a worker
    log.info("run %s joined incident %s", run.id, inc.id)


def joined(s: Session, run: Run, inc: Incident, note: Note | None, what: str = "joined") -> None:
    """The effect that says so on the run's ticket, linked to the parent issue when it has one by then."""
    add_effect(
        s,
        run,
        f"run:{run.id}:incident:{inc.id}:{what}",
        IncidentJoin(kind="incident.join", ticket_id=run.ticket_id, incident_id=inc.id, note=note),
    )


def open_sql(ctx: RunContext) -> str:
    """SQL saying whether the `runs` row's instance has an open incident that the run may join (before
    its next step), for the statements that take and write a run (written out: it goes into
    RETURNING clauses, whose columns SQLAlchemy renders unqualified)."""
    if not ctx.incidents.enabled:
        return "1 = 0"
    pbx = "''" if ctx.directory is None else "runs.pbx"  # `instance_of`: NULL has none
    return f"EXISTS (SELECT 1 FROM incidents WHERE {_may_join(pbx, 'runs.id')})"


def hold_if_open(ctx: RunContext, s: Session, run: Run, lines: list[str] | None = None) -> bool:
    """Join the open incident of the run's instance that it may join, if there is one (its comment
    starting with `lines`); not one already recovering (its tickets are being released)."""
    pbx = instance_of(ctx, run) if ctx.incidents.enabled else None
    inc = open_for(s, pbx, run.id) if pbx is not None else None
    if inc is None:
        return False
    join(ctx, s, run, inc, lines)
    return True


def confirm(ctx: RunContext, run: Run, facts: Mapping[str, Any]) -> Health | None:
    """When a step's findings newly lead with a fault of the PBX itself and no incident is open for
    it: a check of the PBX, run before any incident is opened (outside a transaction). One ticket's
    findings can be partial (SIP silent may be the SIP stack or the network in front of it); the
    PBX's own checks (ARI, its modules, its database, the SIP path) settle it."""
    pbx = instance_of(ctx, run) if ctx.incidents.enabled else None
    cause = incident_cause(ctx, facts) if pbx is not None else None
    if pbx is None or cause is None:
        return None
    before = incident_cause(ctx, run.facts)
    if before is not None and before.id == cause.id:
        return None  # checked when it first led
    with ctx.store.tx() as s:
        if open_for(s, pbx, run.id) is not None:
            return None  # the run joins it
    return check(ctx, pbx)


def may_detect(ctx: RunContext, run: Run, facts: Mapping[str, Any], health: Health | None) -> bool:
    """Whether `detect` could join the run to an incident or change it (else it reads nothing)."""
    pbx = instance_of(ctx, run) if ctx.incidents.enabled else None
    if pbx is None:
        return False
    if health is not None or incident_cause(ctx, facts) is not None:
        return True
    error = facts.get(ERROR_FINDING)
    return isinstance(error, str) and error != NO_ERROR and run.error_class is None


def detect(
    ctx: RunContext, s: Session, run: Run, facts: Mapping[str, Any], health: Health | None = None
) -> bool:
    """After a step: join the incident its findings point at (opened when `confirm`'s check of the
    PBX agrees, or when nothing can check the PBX), or the one the threshold opens. Says whether the
    run was joined."""
    pbx = instance_of(ctx, run) if ctx.incidents.enabled else None
    if pbx is None:
        return False
    cause = incident_cause(ctx, facts)
    if health is not None:
        run.facts = {**run.facts, **health.facts}  # the PBX's own check is newer evidence
    if cause is not None:
        found = f"the findings of ticket {run.ticket.key}"
        if health is not None and open_for(s, pbx, run.id) is None:
            if health.cause is not None:
                c = health.cause
                confirmed = f"{found}, confirmed by a check of {where(pbx)}"
                open_incident(ctx, s, pbx, c.id, c.title, c.found(), health.facts, confirmed)
            elif not health.known:
                open_incident(ctx, s, pbx, cause.id, cause.title, cause.found(), facts, found)
        return hold_if_open(ctx, s, run)
    error = facts.get(ERROR_FINDING)
    if not isinstance(error, str) or error == NO_ERROR or run.error_class is not None:
        return False
    run.error_class = error[:32]
    policy = ctx.incidents
    if not policy.threshold:
        return False
    since = ctx.clock() - policy.window
    count = s.scalar(
        select(func.count())
        .select_from(Run)
        .where(Run.pbx.is_(None) if not pbx else Run.pbx == pbx)
        # reports not yet part of an incident: after a false alarm, counting starts afresh
        .where(Run.error_class == run.error_class, Run.created_at >= since, Run.incident_id.is_(None))
    )
    if (count or 0) < policy.threshold:
        return False
    minutes = policy.window.total_seconds() / 60
    open_incident(
        ctx,
        s,
        pbx,
        f"{BY_COUNT}:{run.error_class}",
        f"{count} tickets report the same error",
        f"{count} users of {where(pbx)} reported the app error '{run.error_class}' within {minutes:g} min",
        facts,
        f"{count} tickets with the app error '{run.error_class}' within {minutes:g} min",
    )
    return hold_if_open(ctx, s, run)


def locked(ctx: RunContext, s: Session, incident_id: int) -> Incident:
    """The incident, locked and read afresh, for a transaction that writes it."""
    if ctx.store.engine.dialect.name == "sqlite":  # take the write lock now (see Store.held)
        s.execute(update(Incident).where(Incident.id == incident_id).values(version=Incident.version))
    inc = s.get(Incident, incident_id, with_for_update=True, populate_existing=True)
    assert inc is not None
    return inc


def counts(s: Session, incident_id: int) -> tuple[int, int, int]:
    """(tickets, distinct users, tickets closed by the incident's recovery) of an incident: every
    ticket that joined it, also those it released that joined a later one."""
    tickets, users = s.execute(
        select(func.count(Run.id), func.count(distinct(func.coalesce(Ticket.user_ref, Ticket.reporter))))
        .join(IncidentRun, IncidentRun.run_id == Run.id)
        .join(Ticket, Ticket.id == Run.ticket_id)
        .where(IncidentRun.incident_id == incident_id)
    ).one()
    closed = s.scalar(
        select(func.count(Run.id)).where(
            Run.incident_id == incident_id, Run.state == RunState.ENDED, Run.end_kind == "close"
        )
    )
    return int(tickets), int(users), int(closed or 0)

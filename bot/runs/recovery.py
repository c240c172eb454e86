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
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot.runs import endings, identify, incidents, notices, records
from bot.runs.context import RunContext
from bot.runs.redact import redact, redact_facts
from bot.state.models import Incident, IncidentState, PbxHealth, Run, RunState
from bot.state.store import rows_updated
from integrations.base import ActionInput, AdapterError
from integrations.tickets import answerer

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
    if state == IncidentState.OPEN and due:
        health = incidents.check(ctx, pbx)
        now = ctx.clock()
        with ctx.store.tx() as s:
            inc = incidents.locked(ctx, s, incident_id)
            inc.facts = health.facts or inc.facts
            inc.checked_at, inc.version = now, inc.version + 1
            restorer = answerer(inc.restored_by or "", inc.restored_via)  # as the tickets name them
            if health.healthy or (not health.known and inc.restored_by):
                inc.health = health.summary if health.known else f"{restorer} said it is restored"
                inc.state, inc.recovered_at = IncidentState.RECOVERING, now
            else:
                inc.health = health.summary
                if health.cause is not None and inc.cause.startswith(incidents.BY_COUNT):
                    incidents.name_cause(s, inc, health.cause)
                if inc.restored_by:
                    inc.health = (
                        f"{restorer} said it is restored, but the check at {now:%H:%M:%S} UTC "
                        f"still finds: {health.summary}"
                    )[:1000]
                    inc.restored_by = inc.restored_via = None
                wait = min(policy.check_max, policy.check * 2**inc.checks)
                inc.checks += 1
                inc.next_check_at = now + dt.timedelta(seconds=wait)
            state = inc.state
    notices.show(ctx, incident_id)
    if state == IncidentState.OPEN:
        notices.remind(ctx, incident_id)
    elif state == IncidentState.RECOVERING:
        _recover(ctx, incident_id, owner)
        notices.show(ctx, incident_id)
    else:
        notices.resolve_parent(ctx, incident_id)


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
        notices.show(ctx, incident_id)
        if not any(settled):
            return  # their runs are busy (a worker making their effects): the next sweep goes on
    with ctx.store.tx() as s:
        inc = incidents.locked(ctx, s, incident_id)
        inc.state, inc.closed_at, inc.active_key = IncidentState.CLOSED, ctx.clock(), None
        inc.version += 1
        inc.close_reason = _summary(s, inc)
        log.warning("incident %s closed: %s", inc.id, inc.close_reason)
    notices.resolve_parent(ctx, incident_id)


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
                outcome, said, summary, evidence = res.outcome, "", res.summary, redact(res.evidence)
                facts, registered = redact_facts(res.facts), res.outcome == incidents.REGISTERED
            except AdapterError as exc:
                outcome, said, summary, evidence = (
                    "error",
                    records.FAILED,
                    f"{incidents.RECHECK} failed: {exc}",
                    {"error": str(exc)},
                )
                facts = redact_facts(exc.facts)
            rec = records.StepRecord(
                "incident_recheck",
                "auto",
                outcome,
                summary,
                started,
                ctx.clock(),
                evidence,
                said=said,
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
    tickets, users, closed = incidents.counts(s, inc.id)
    if inc.dismissed_by:
        return (
            f"{answerer(inc.dismissed_by, inc.dismissed_via)} said it is not a PBX problem; "
            f"{tickets} ticket(s) are checked on their own."
        )
    took = _duration((inc.recovered_at or inc.opened_at) - inc.opened_at)
    # Only an incident opened by count can be a false alarm: any other was confirmed by a check.
    false_alarm = inc.checks == 0 and inc.cause.startswith(incidents.BY_COUNT)
    how = "false alarm: the first check found the PBX healthy" if false_alarm else f"back after {took}"
    return (
        f"{inc.title} on {incidents.where(inc.pbx)} ({how}); {tickets} ticket(s) from {users} user(s): "
        f"{closed} closed after their app registered again, {tickets - closed} checked on their own."
    )


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"

"""Runs, tickets, prompts and incidents as plain data, for the JSON API and the CLI alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.runs import sla
from bot.runs.fixes import stated
from bot.runs.incidents import counts
from bot.state.models import (
    EffectState,
    Event,
    Incident,
    IncidentRun,
    IncidentState,
    OperatorAction,
    Prompt,
    Run,
    RunState,
    Ticket,
    utcnow,
)
from integrations.tickets import answerer
from playbook.diagnosis import Rules, diagnose
from playbook.facts import findings


def step_dict(r: Any) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "step": r.step,
        "title": r.title,
        "level": r.level,
        "action": r.action,
        "mode": r.mode,
        "outcome": r.outcome,
        "said": r.said,
        "summary": r.summary,
        "evidence": r.evidence,
        "answered_by": r.answered_by,
        "answered_via": r.answered_via,
        "started_at": r.started_at.isoformat(),
        "seconds": round(r.seconds, 3),
    }


def event_dict(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "delivery_id": event.delivery_id,
        "kind": event.kind,
        "ticket": event.ticket_key,
        "received_at": event.received_at.isoformat(),
        "processed_at": event.processed_at.isoformat() if event.processed_at else None,
        "outcome": event.outcome,
    }


def diagnosis_dict(rules: Rules, facts: Mapping[str, Any]) -> dict[str, Any]:
    """A run's findings (not the ids its steps pass on) and its diagnosis: the leading cause first
    (the fallback cause when the findings point at none), then the other candidates with some
    confidence, each as `Cause.as_dict()`, a fix already put for approval said as what became of it
    (`fixes.stated`). What `runs show`, the API and the desk's run page show."""
    causes = [stated(facts, c) for c in diagnose(rules, facts)]
    shown = [causes[0], *(c for c in causes[1:] if c.confidence > 0)]
    return {"findings": findings(facts), "diagnosis": [c.as_dict() for c in shown]}


def sla_list(ticket: Ticket, now: dt.datetime) -> list[dict[str, Any]]:
    """The ticket's SLA clocks with the time left: what the desk and the API show."""
    return [
        {
            "name": c.name,
            "ongoing": c.ongoing,
            "paused": c.paused,
            "breached": c.breached,
            "breach_at": c.breach_at.isoformat() if c.breach_at else None,
            "seconds_left": None if (left := c.seconds_left(now)) is None else round(left),
            "near": c.near(now),
            "said": sla.time_left(c, now),
        }
        for c in sla.clocks(ticket)
    ]


def run_dict(
    run: Run, steps: bool = True, rules: Rules | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """A run as plain data, with its ticket's SLA clocks (time left as of `now`); with `rules`
    (those the playbook was loaded with), its findings and diagnosis too."""
    data: dict[str, Any] = {
        "id": run.id,
        "ticket": run.ticket.key,
        "ticket_source": run.ticket.source,
        "playbook": run.playbook,
        "playbook_version": run.playbook_version,
        "state": run.state,
        "step": run.step,
        "end": run.end_kind,
        "end_level": run.end_level,
        "end_reason": run.end_reason,
        "classification": run.ticket.match_reason,
        "pbx": run.pbx,
        "pbx_reason": run.pbx_reason,
        "created_at": run.created_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "sla": sla_list(run.ticket, now or utcnow()),
    }
    if steps:
        data["steps"] = [step_dict(r) for r in run.steps]
        data["failed_effects"] = [
            {"id": e.id, "kind": e.kind, "key": e.key, "attempts": e.attempts, "error": e.error}
            for e in run.effects
            if e.state == EffectState.FAILED
        ]
        data["actions"] = [action_dict(a) for a in run.actions]
    if rules is not None:
        data.update(diagnosis_dict(rules, run.facts))
    return data


def prompt_dict(p: Prompt) -> dict[str, Any]:
    return {
        "id": p.id,
        "run": p.run_id,
        "ticket": p.run.ticket.key,
        "step": p.step,
        "kind": p.kind,
        "level": p.level,
        "title": p.title,
        "question": p.question,
        "options": [{"value": value, "label": label} for value, label in p.options],
        "text_label": p.text_label,
        "state": p.state,
        "answer": p.answer,
        "answer_text": p.answer_text,
        "answered_by": p.answered_by,
        "answered_via": p.answered_via,
        "answered_at": p.answered_at.isoformat() if p.answered_at else None,
        "expires_at": p.expires_at.isoformat(),
        "handed_to": p.handed_to,
    }


def already(prompt: Mapping[str, Any]) -> str:
    """What a late answer to a settled prompt (as `prompt_dict`) is told: `already answered by W111 in
    Slack`, who answered named as a ticket names them (`answerer`)."""
    by = prompt["answered_by"]
    return f"already {prompt['state']}" + (f" by {answerer(by, prompt['answered_via'])}" if by else "")


def ticket_dict(t: Ticket) -> dict[str, Any]:
    return {
        "key": t.key,
        "source": t.source,
        "summary": t.summary,
        "description": t.description,
        "reporter": t.reporter,
        "user": t.user_ref,
        "status": t.status,
        "level": t.level,
        "queue": t.queue,
        "matched": t.matched,
        "match_reason": t.match_reason,
        "created_at": t.created_at.isoformat(),
        "comments": [
            {"author": c.author, "body": c.body, "at": c.created_at.isoformat()} for c in t.comments
        ],
        "runs": [r.id for r in t.runs],
    }


END_WORDS = {"close": "closed", "cancel": "cancelled", "rerun": "re-run"}


def end_label(kind: str | None, level: int | None) -> str:
    """How a run ended, in words: closed, escalated to level N, cancelled, re-run."""
    return END_WORDS.get(kind or "", f"escalated to level {level}")


def run_label(run: Run | None) -> str:
    """A run's state in words: running, waiting, closed, escalated to level N, cancelled, re-run."""
    if run is None:
        return "no run"
    if run.state != RunState.ENDED:
        return run.state
    return end_label(run.end_kind, run.end_level)


def action_dict(a: OperatorAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "verb": a.verb,
        "run": a.run_id,
        "effect": a.effect_id,
        "prompt": a.prompt_id,
        "who": a.who,
        "via": a.via,
        "why": a.why,
        "done": a.done,
        "at": a.at.isoformat(),
    }


def ticket_row(t: Ticket) -> dict[str, Any]:
    """A ticket as one line of a list: status, level and queue, and its latest run."""
    run = t.runs[-1] if t.runs else None
    return {
        "key": t.key,
        "source": t.source,
        "summary": t.summary,
        "reporter": t.reporter,
        "user": t.user_ref,
        "status": t.status,
        "level": t.level,
        "queue": t.queue,
        "created_at": t.created_at.isoformat(),
        "run": run.id if run else None,
        "run_state": run_label(run),
    }


def incident_dict(s: Session, inc: Incident, children: bool = False) -> dict[str, Any]:
    """An incident as plain data (with its tickets, when asked): `incidents show`, the API, the desk."""
    tickets, users, closed = counts(s, inc.id)
    at = {
        name: when.isoformat(timespec="seconds") if when else None
        for name, when in (
            ("opened_at", inc.opened_at),
            ("checked_at", inc.checked_at),
            ("next_check_at", inc.next_check_at if inc.state == IncidentState.OPEN else None),
            ("recovered_at", inc.recovered_at),
            ("closed_at", inc.closed_at),
        )
    }
    data: dict[str, Any] = {
        "id": inc.id,
        "pbx": inc.pbx,
        "cause": inc.cause,
        "title": inc.title,
        "statement": inc.statement,
        "state": inc.state,
        "opened_by": inc.opened_by,
        **at,
        "health": inc.health,
        "checks": inc.checks,
        "owner": inc.owner,
        "owner_via": inc.owner_via,
        "restored_by": inc.restored_by,
        "restored_via": inc.restored_via,
        "dismissed_by": inc.dismissed_by,
        "dismissed_via": inc.dismissed_via,
        "parent": inc.parent_key,
        "parent_error": inc.parent_error or None,
        "summary": inc.close_reason,
        "tickets": tickets,
        "users": users,
        "closed_tickets": closed,
    }
    if children:
        runs = s.scalars(
            select(Run)
            .join(IncidentRun, IncidentRun.run_id == Run.id)
            .where(IncidentRun.incident_id == inc.id)
            .order_by(Run.id)
        )
        data["children"] = [
            {
                "run": r.id,
                "ticket": r.ticket.key,
                "source": r.ticket.source,
                "user": r.ticket.user_ref,
                "state": r.state,
                "end": r.end_kind,
            }
            for r in runs
        ]
    return data

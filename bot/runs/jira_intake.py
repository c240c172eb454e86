"""Jira on the worker side: stored webhook events become tickets, classified; missed ones are backfilled.

Out-of-order deliveries are tolerated by keeping the newest: an event older than the one the
ticket was last updated from changes nothing. Trimmed payloads (Cloud's `comment_created` carries
only a few issue fields) update only the fields they carry.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.runs import intake, prompts, sla
from bot.runs.classify import Candidate, Decision, Rules, classify
from bot.runs.context import Handler, RunContext
from bot.state.models import Event, Run, Ticket
from integrations.jira.client import JiraClient
from integrations.jira.models import (
    HANDLED_EVENTS,
    IssueFields,
    WebhookPayload,
    error_text,
    request_type,
    scalar,
    sla_clocks,
)
from integrations.jira.settings import JiraSettings
from integrations.jira.tickets import JiraTickets

log = logging.getLogger(__name__)
OVERLAP = dt.timedelta(minutes=10)


def rules(settings: JiraSettings) -> Rules:
    return Rules(
        projects=settings.projects,
        issue_types=settings.issue_types,
        request_types=settings.request_types,
        labels=settings.labels,
        components=settings.components,
        keywords=settings.keywords,
        patterns=settings.patterns,
    )


SERVICE_DESK = "service_desk"  # projectTypeKey of a Jira Service Management project


def service_project(key: str | None, project_type: str | None, settings: JiraSettings) -> bool:
    """Whether a project is a Service Management project, whose requests have customers: said by the
    payload's `projectTypeKey`, else by `CONNBOT_JIRA_SERVICE_PROJECTS`."""
    return project_type == SERVICE_DESK or (key or "") in settings.service_projects


def issue_data(f: IssueFields, settings: JiraSettings, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """What connbot keeps of an issue's fields (only those present in the payload); `keep` names
    custom fields kept as they are (those the PBX routing rules read)."""
    present = f.model_fields_set | set(f.model_extra or {})
    data: dict[str, Any] = {name: f.custom(name) for name in keep if name in (f.model_extra or {})}
    if "project" in present and f.project:
        data["project"] = f.project.key or f.project.name or ""
        data["service_desk"] = service_project(f.project.key, f.project.project_type, settings)
    if "issuetype" in present and f.issuetype:
        data["issue_type"] = f.issuetype.name or ""
    if "labels" in present:
        data["labels"] = list(f.labels)
    if "components" in present:
        data["components"] = [c.name for c in f.components if c.name]
    if settings.request_type_field in present:
        data["request_type"] = request_type(f.custom(settings.request_type_field))
    if "description" in present:
        data["error_text"] = error_text(f.description)
    if "reporter" in present and f.reporter:
        data["reporter"] = {
            "email": f.reporter.email,
            "account_id": f.reporter.account_id,
            "name": f.reporter.name,
            "key": f.reporter.key,
            "display_name": f.reporter.display_name,
        }
    if "created" in present and f.created:
        data["created"] = f.created
    clocks = sla_clocks(f, settings.sla_first_response, dt.timedelta(minutes=settings.sla_warn_minutes))
    if clocks:
        data[sla.FIELD] = [c.model_dump(mode="json") for c in clocks]
    return data


def decide(settings: JiraSettings, summary: str, description: str, data: dict[str, Any]) -> Decision:
    return classify(
        rules(settings),
        Candidate(
            summary=summary,
            description=description,
            project=data.get("project", ""),
            issue_type=data.get("issue_type", ""),
            request_type=data.get("request_type", ""),
            labels=data.get("labels", []),
            components=data.get("components", []),
        ),
    )


def upsert(s: Session, settings: JiraSettings, payload: WebhookPayload, keep: tuple[str, ...] = ()) -> Ticket:
    """Create or update the ticket from a delivery, unless a newer one was applied already."""
    issue, f = payload.issue, payload.issue.fields
    ticket = s.scalars(select(Ticket).where(Ticket.source == "jira", Ticket.key == issue.key)).first()
    if ticket is None:
        ticket = Ticket(source="jira", key=issue.key, fields={})
        s.add(ticket)
    elif int(ticket.fields.get("jira_timestamp", 0)) > payload.timestamp:
        log.info(
            "jira %s: delivery from %s is older than the last applied; ignored", issue.key, payload.timestamp
        )
        return ticket
    if "summary" in f.model_fields_set:
        ticket.summary = f.summary
    if "description" in f.model_fields_set:
        ticket.description = f.description or ""
    if "reporter" in f.model_fields_set and f.reporter:
        ticket.reporter = f.reporter.ident[:255]
    user = scalar(f.custom(settings.user_field)) if settings.user_field else ""
    if user:
        ticket.user_ref = user[:255]
    data = {**(ticket.fields or {}), **issue_data(f, settings, keep), "jira_timestamp": payload.timestamp}
    decision = decide(settings, ticket.summary or "", ticket.description or "", data)
    ticket.fields = data
    ticket.matched, ticket.match_reason = decision.matched, decision.reason
    s.flush()
    return ticket


def from_reporter(comment: dict[str, Any], ticket: Ticket) -> bool:
    """Whether a comment's author is the ticket's reporter (by accountId, else user name or key)."""
    author, reporter = comment.get("author") or {}, ticket.fields.get("reporter") or {}
    pairs = [("accountId", "account_id"), ("name", "name"), ("key", "key")]
    return any(author.get(a) and author.get(a) == reporter.get(r) for a, r in pairs)


def make_handler(settings: JiraSettings) -> Handler:
    """The intake handler for source "jira". A comment of the reporter's (Cloud's `comment_created`,
    or an issue update carrying it) answers the run's open question to the customer, if any."""

    def handle(ctx: RunContext, s: Session, event: Event) -> Ticket | None:
        if event.kind not in HANDLED_EVENTS:
            return None
        keep = tuple(ctx.directory.fields) if ctx.directory is not None else ()
        payload = WebhookPayload.model_validate(event.payload)
        ticket = upsert(s, settings, payload, keep)
        if ticket.fields.get(sla.FIELD):
            prompts.bring_reminder_forward(s, ticket, ctx.clock())
        comment = payload.comment
        if comment is not None and from_reporter(comment, ticket):
            body = comment.get("body")
            who = str((comment.get("author") or {}).get("displayName") or "the customer")
            prompts.customer_replied(ctx, s, ticket, body if isinstance(body, str) else "", who)
        return ticket

    return handle


def _quote(values: list[str]) -> str:
    return ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)


def jql(settings: JiraSettings, minutes: int) -> str:
    """Tickets in scope created in the last `minutes` (relative: the bot user's time zone does not matter)."""
    parts = []
    if settings.projects:
        parts.append(f"project in ({_quote(settings.projects)})")
    if settings.issue_types:
        parts.append(f"issuetype in ({_quote(settings.issue_types)})")
    parts.append(f'created >= "-{minutes}m"')
    return " AND ".join(parts) + " ORDER BY created ASC"


class Backfill:
    """Finds tickets whose webhook never came: every `backfill_minutes`, from the newest seen on."""

    def __init__(self, ctx: RunContext, settings: JiraSettings, client: JiraClient):
        self.ctx, self.settings, self.client = ctx, settings, client
        self.last_run: dt.datetime | None = None

    def tick(self) -> int | None:
        """Run if due (at once on the first call). Returns how many tickets were started, None if not due."""
        now = self.ctx.clock()
        if self.last_run and now < self.last_run + dt.timedelta(minutes=self.settings.backfill_minutes):
            return None
        since = self._since(now)
        started = self.run(since, now)
        self.last_run = now
        return started

    def _since(self, now: dt.datetime) -> dt.datetime:
        with self.ctx.store.tx() as s:
            newest = s.scalar(select(func.max(Ticket.created_at)).where(Ticket.source == "jira"))
        floor = now - dt.timedelta(hours=self.settings.backfill_hours)
        since = (
            min(t for t in (newest, self.last_run) if t is not None) - OVERLAP
            if (newest or self.last_run)
            else floor
        )
        return max(since, floor)

    def run(self, since: dt.datetime, now: dt.datetime) -> int:
        """Record a `backfill:<key>` event for each matching ticket created since `since` that has no run."""
        minutes = max(1, math.ceil((now - since).total_seconds() / 60))
        found = self.client.search(jql(self.settings, minutes))
        with self.ctx.store.tx() as s:
            with_runs = set(s.scalars(select(Ticket.key).join(Run).where(Ticket.source == "jira")))
        started = 0
        for raw in found:
            body = {
                "timestamp": int(now.timestamp() * 1000),
                "webhookEvent": "jira:issue_created",
                "issue": raw,
            }
            payload = WebhookPayload.model_validate(body)
            key, f = payload.issue.key, payload.issue.fields
            if key in with_runs:
                continue
            data = issue_data(f, self.settings)
            if not decide(self.settings, f.summary, f.description or "", data).matched:
                continue
            _, new = intake.record(
                self.ctx.store,
                "jira",
                f"backfill:{key}",
                payload.webhook_event,
                key,
                json.dumps(body),
                self.ctx.waker.wake_event,
            )
            started += int(new)
        if started:
            log.info("jira backfill: %s missed ticket(s) queued", started)
        return started


def backfiller(ctx: RunContext) -> Backfill | None:
    """The backfill for the configured Jira, if there is one."""
    system = ctx.tickets.get("jira")
    return Backfill(ctx, system.settings, system.client) if isinstance(system, JiraTickets) else None

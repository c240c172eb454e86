"""Jira as a ticket system: comments, closing by transition, escalating to a level's target.

Each write is made once per marker. The bot's comment carries the marker (see `render`; only
comments written by connbot's own account count, so a marker pasted by anyone else is ignored), and
every write that changes the issue carries its comment in the same request (transition with
comment; edit with comment), so "the marker is on the issue" means "the write was made". A
retried job looks first and does nothing if it finds it; an effect's first attempt (recorded
before it is made, `TicketRef.first_attempt`) has nothing to find and saves the look.

On a ticket with customers (`TicketRef.customers`, a service project's request) every note for the
agents is an internal note (`sd.public.comment`), on each path: comment, transition, edit, and the
comment of an issue link request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from integrations.base import PermanentError
from integrations.jira.client import JiraClient, comment_body
from integrations.jira.render import has_marker, render
from integrations.jira.settings import EscalationTarget, JiraSettings
from integrations.settings import Sections
from integrations.tickets import Audience, Note, TicketRef, TicketSystem

log = logging.getLogger(__name__)


def internal(ticket: TicketRef, note: Note) -> bool:
    """Whether the note is hidden from the ticket's customers."""
    return ticket.customers and note.audience == Audience.AGENTS


class JiraTickets(TicketSystem):
    source = "jira"

    def __init__(
        self,
        settings: JiraSettings,
        client: JiraClient | None = None,
        by_pbx: dict[str, dict[int, EscalationTarget]] | None = None,
    ):
        """`by_pbx`: escalation targets of PBX instances that override `CONNBOT_JIRA_ESCALATION`."""
        self.settings = settings
        self.client = client or JiraClient(settings)
        self.by_pbx = by_pbx or {}

    @classmethod
    def configure(cls, sections: Sections, by_pbx: Mapping[str, Mapping[int, Any]]) -> JiraTickets | None:
        settings = sections(JiraSettings)
        return (
            cls(settings, by_pbx={pbx: dict(targets) for pbx, targets in by_pbx.items()})
            if settings.configured
            else None
        )

    def _done(self, ticket: TicketRef, marker: str) -> bool:
        if ticket.first_attempt:
            return False
        if any(has_marker(body, marker) for body in self.client.own_comment_bodies(ticket.key)):
            log.info("jira %s: %s already written, skipping", ticket.key, marker)
            return True
        return False

    def comment(self, ticket: TicketRef, note: Note, marker: str) -> None:
        if not self._done(ticket, marker):
            self.client.add_comment(ticket.key, render(note, marker), internal(ticket, note))

    def close(self, ticket: TicketRef, note: Note, marker: str) -> None:
        if self._done(ticket, marker):
            return
        wanted = self.settings.resolved_status.casefold()
        options = self.client.transitions(ticket.key)
        chosen = next((t for t in options if str(t.get("name", "")).casefold() == wanted), None) or next(
            (t for t in options if str(t.get("to", {}).get("name", "")).casefold() == wanted), None
        )
        if chosen is None:
            names = ", ".join(repr(t.get("name")) for t in options) or "none"
            raise PermanentError(
                f"{ticket.key}: no transition named {self.settings.resolved_status!r} "
                f"(CONNBOT_JIRA_RESOLVED_STATUS) is open to the bot; available: {names}"
            )
        fields: dict[str, Any] = {}
        screen = chosen.get("fields")
        if self.settings.resolution and (screen is None or "resolution" in screen):
            fields["resolution"] = {"name": self.settings.resolution}
        self.client.transition(
            ticket.key, str(chosen["id"]), fields, render(note, marker), internal(ticket, note)
        )

    def escalate(self, ticket: TicketRef, level: int, note: Note, marker: str) -> None:
        if self._done(ticket, marker):
            return
        target = self.by_pbx.get(ticket.pbx or "", {}).get(level) or self.settings.escalation.get(level)
        if target is None:
            log.warning(
                "jira %s: no escalation target for level %s (CONNBOT_JIRA_ESCALATION); commenting only",
                ticket.key,
                level,
            )
            target = EscalationTarget()
        if target.assignee:
            self.client.assign(ticket.key, target.assignee)
        fields = dict(target.fields)
        if target.request_type:
            fields[self.settings.request_type_field] = target.request_type
        update: dict[str, Any] = {
            "comment": [{"add": comment_body(render(note, marker), internal(ticket, note))}]
        }
        if target.labels:
            update["labels"] = [{"add": label} for label in target.labels]
        if target.components:
            update["components"] = [{"add": {"name": name}} for name in target.components]
        self.client.edit(ticket.key, fields, update)

    def link(self, ticket: TicketRef) -> str | None:
        return self.client.browse_url(ticket.key)

    def open_parent(self, summary: str, note: Note, marker: str) -> str | None:
        """The parent issue in `CONNBOT_JIRA_INCIDENT_PROJECT`, labelled with the marker, so that a
        repeated attempt finds the issue an earlier one created instead of creating a second."""
        project = self.settings.incident_project
        if not project:
            return None
        label = marker.replace(":", "-")
        found = self.client.search(f'project = "{project}" AND labels = "{label}"', limit=1)
        if found:
            return str(found[0]["key"])
        kind = self.settings.incident_issue_type
        return self.client.create_issue(project, kind, summary[:250], render(note, marker), label)

    @property
    def parents(self) -> bool:
        return bool(self.settings.incident_project)

    def link_parent(self, ticket: TicketRef, parent_key: str, note: Note | None, marker: str) -> None:
        """One request: the link, and the note on the ticket (Jira adds a link request's comment to
        its "from" issue, again on a repeat, so a repeated attempt looks for the link first)."""
        if not ticket.first_attempt and parent_key in self.client.linked_keys(ticket.key):
            log.info("jira %s: already linked to %s, skipping", ticket.key, parent_key)
            return
        body, hidden = (render(note, marker), internal(ticket, note)) if note is not None else (None, False)
        self.client.link_issues(self.settings.incident_link_type, parent_key, ticket.key, body, hidden)

    def locale(self, ticket: TicketRef) -> str | None:
        return self.client.locale(ticket.reporter) if ticket.reporter else None

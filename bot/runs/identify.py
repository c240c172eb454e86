"""Who a ticket is about: the user's PBX identity (extension or SIP username), before the playbook.

A ticket names its user (the desk form, the Jira user field) or it does not. Then connbot looks
the reporter's e-mail up through the app backend (`app.find_user`) and, failing that, asks a
person once. If nobody knows, the playbook runs anyway: the steps that need the user fail into
their failure edges, or ask a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.state.models import Run, Ticket

STEP = "identify_user"
ACTION = "app.find_user"
GIVEN, UNKNOWN = "given", "unknown"
OPTIONS = [(GIVEN, "Here is the user"), (UNKNOWN, "Nobody knows")]
TEXT_LABEL = "The user's extension or SIP username"
# The step's outcomes in words: the look-up's (app.find_user) and a person's answer.
WORDS = {
    "found": "Found by the reporter's e-mail",
    "not_found": "Not found by the reporter's e-mail",
    GIVEN: "A person named the user",
    UNKNOWN: "Nobody knows the user",
}
QUESTION = (
    "The ticket does not say which PBX user (extension or SIP username) it is about, and connbot could "
    "not find out from the reporter's e-mail. Which user is it?"
)


@dataclass(frozen=True)
class IdentifyStep:
    """The identification as a step of a run, for its step result."""

    title: str = "Identify the user"
    level: int = 1
    action: str = ACTION

    def label(self, outcome: str) -> str:
        return WORDS.get(outcome, outcome)


def needed(run: Run) -> bool:
    return not run.ticket.user_ref and not run.facts.get("identify_done")


def email(ticket: Ticket) -> str | None:
    return ticket.reporter if "@" in ticket.reporter else None


def accept(text: str | None) -> str | None:
    """The user named in a person's answer, or None when the answer names nobody."""
    user = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
    return user[:255] or None

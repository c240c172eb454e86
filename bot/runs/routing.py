"""Which PBX a ticket is checked against: remembered answers first, then the directory's rules.

Each rule yields a customer key from the ticket (a field's value, the reporter's e-mail domain,
a group of a regex on the summary). The first key that a person's remembered answer or an
instance's `customers` list knows wins. With none, a person is asked, and may have the answer
remembered for the ticket's first customer key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.fleet.directory import Directory, Rule
from bot.state.models import PbxRoute, Ticket

STEP = "route_pbx"
REMEMBER = "+remember"
ALIASES = {"component": "components"}


@dataclass(frozen=True)
class RouteStep:
    """The routing question as a step of a run, for its step result."""

    title: str = "Choose the PBX to check against"
    level: int = 1
    action: str = ""

    def label(self, outcome: str) -> str:
        """Its outcome is the name of the PBX chosen."""
        return f"PBX {outcome}"


@dataclass(frozen=True)
class Route:
    pbx: str
    reason: str
    remembered: str = ""  # the customer key a person's choice was remembered for just now


def _strings(value: Any) -> list[str]:
    """A field's value as text: plain values, option objects (`value`/`name`/`key`), every item of a list."""
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return next(([str(value[k])] for k in ("value", "name", "key", "id") if value.get(k)), [])
    text = "" if value is None else str(value).strip()
    return [text] if text else []


def email_domain(ticket: Ticket) -> str | None:
    reporter = ticket.fields.get("reporter") if isinstance(ticket.fields.get("reporter"), dict) else {}
    address = (reporter or {}).get("email") or ticket.reporter
    return address.rsplit("@", 1)[1].strip().lower() or None if address and "@" in address else None


def _keys(rule: Rule, ticket: Ticket) -> list[tuple[str, str]]:
    """(customer key, why) pairs one rule finds on a ticket."""
    if rule.field is not None:
        name = ALIASES.get(rule.field, rule.field)
        return [(v, f"field {rule.field} is {v!r}") for v in _strings(ticket.fields.get(name))]
    if rule.email_domain:
        domain = email_domain(ticket)
        return [(domain, f"the reporter's e-mail domain is {domain}")] if domain else []
    assert rule.summary is not None
    match = re.search(rule.summary, ticket.summary or "")
    key = (match.group("customer") or "").strip() if match else ""
    return [(key, f"the summary names {key!r}")] if key else []


def candidates(directory: Directory, ticket: Ticket) -> list[tuple[str, str]]:
    """Every customer key the rules find on the ticket, in rule order."""
    return [pair for rule in directory.routing for pair in _keys(rule, ticket)]


def route(s: Session, directory: Directory, ticket: Ticket) -> Route | None:
    """The PBX for a ticket: a remembered answer for one of its keys, else the first key an instance lists."""
    found = candidates(directory, ticket)
    for key, why in found:
        remembered = s.get(PbxRoute, key.casefold())
        if remembered is not None and directory.instance(remembered.pbx) is not None:
            return Route(remembered.pbx, f"{why}, remembered for {key} by {remembered.remembered_by}")
    for key, why in found:
        if (owner := directory.owner(key)) is not None:
            return Route(owner.name, why)
    return None


def customer_key(directory: Directory, ticket: Ticket) -> str | None:
    """The key an answer is remembered for: the first the rules find on the ticket."""
    found = candidates(directory, ticket)
    return found[0][0] if found else None


def options(directory: Directory, ticket: Ticket) -> list[tuple[str, str]]:
    """One answer per instance and, when the ticket has a customer key, one that also remembers it."""
    names = [i.name for i in directory.instances]
    key = customer_key(directory, ticket)
    remember = [(f"{n}{REMEMBER}", f"{n}, and remember it for {key}") for n in names] if key else []
    return [(n, n) for n in names] + remember


def question(directory: Directory, ticket: Ticket) -> str:
    key = customer_key(directory, ticket)
    found = (
        f"its customer key {key!r} is in no instance's list"
        if key
        else "the routing rules find no customer key on it"
    )
    return (
        f"connbot cannot tell which PBX serves the customer of {ticket.key}: {found}. "
        "Which PBX should it check the ticket against?"
    )


def answer(s: Session, directory: Directory, ticket: Ticket, value: str, who: str, now: dt.datetime) -> Route:
    """Apply a person's answer; "<name>+remember" also remembers it for the ticket's customer key."""
    name, remember = value.removesuffix(REMEMBER), value.endswith(REMEMBER)
    key = customer_key(directory, ticket)
    if remember and key:
        row = s.get(PbxRoute, key.casefold()) or PbxRoute(customer_key=key.casefold())
        row.pbx, row.remembered_by, row.created_at = name, who, now
        s.add(row)
        return Route(name, f"chosen by {who}, remembered for {key}", key)
    return Route(name, f"chosen by {who}")

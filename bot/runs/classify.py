"""Is this ticket a connection issue? Configurable rules, a decision and the reason for it.

Projects and issue types narrow the scope: when configured, a ticket outside them never
matches. Within the scope any one signal makes a match: a configured request type, label or
component, a keyword (case-insensitive, whole words) or a regular expression found in the
summary or description. The reason names what decided, so people can see why a run started.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rules:
    projects: Sequence[str] = ()
    issue_types: Sequence[str] = ()
    request_types: Sequence[str] = ()
    labels: Sequence[str] = ()
    components: Sequence[str] = ()
    keywords: Sequence[str] = ()
    patterns: Sequence[str] = ()


@dataclass(frozen=True)
class Candidate:
    """What the rules look at, whatever the ticket system."""

    summary: str = ""
    description: str = ""
    project: str = ""
    issue_type: str = ""
    request_type: str = ""
    labels: Sequence[str] = field(default_factory=tuple)
    components: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Decision:
    matched: bool
    reason: str


def _fold(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").casefold()


def _first(wanted: Sequence[str], have: Sequence[str]) -> str | None:
    have_folded = {_fold(h): h for h in have if h}
    return next((have_folded[_fold(w)] for w in wanted if _fold(w) in have_folded), None)


def _keyword(keywords: Sequence[str], text: str) -> str | None:
    folded = _fold(text)
    for word in keywords:
        if re.search(r"(?<!\w)" + re.escape(_fold(word)) + r"(?!\w)", folded):
            return word
    return None


def classify(rules: Rules, ticket: Candidate) -> Decision:
    """Decide whether `ticket` is a connection issue, and say why."""
    if rules.projects and not _first(rules.projects, [ticket.project]):
        return Decision(
            False, f"project {ticket.project or '(none)'} is not one of {', '.join(rules.projects)}"
        )
    if rules.issue_types and not _first(rules.issue_types, [ticket.issue_type]):
        return Decision(
            False, f"issue type {ticket.issue_type or '(none)'} is not one of {', '.join(rules.issue_types)}"
        )
    if found := _first(rules.request_types, [ticket.request_type]):
        return Decision(True, f"request type {found!r} is a connection-issue request type")
    if found := _first(rules.labels, ticket.labels):
        return Decision(True, f"label {found!r} marks connection issues")
    if found := _first(rules.components, ticket.components):
        return Decision(True, f"component {found!r} handles connection issues")
    text = f"{ticket.summary}\n{ticket.description}"
    if found := _keyword(rules.keywords, text):
        return Decision(True, f"summary or description mentions {found!r}")
    for pattern in rules.patterns:
        if re.search(pattern, text, re.I):
            return Decision(True, f"summary or description matches /{pattern}/")
    return Decision(
        False, "no rule matched: no connection-issue request type, label, component, keyword or pattern"
    )

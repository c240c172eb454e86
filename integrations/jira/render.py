"""Notes as Jira wiki markup (REST v2, Cloud and Server alike), within Jira's comment limit.

A comment is a heading, paragraphs, a table of the steps (outcome, evidence, who, when) and what
happens next, ending with a small grey reference line carrying the write's marker: that line is
how a retried job recognises a comment it already made.
"""

from __future__ import annotations

import json
import re
from typing import Any

from integrations.tickets import Note, StepRow

LIMIT = 32767
TRUNCATED = "\n\n*[connbot: this comment was truncated to fit Jira's limit; the full record is in connbot.]*"
# Characters that open markup able to add content or structure (table cells, macros, links and
# mentions, images), escaped with a backslash; text effects (`*bold*`, `-struck-`) are left, they
# only style the text. A backslash of the text cannot be escaped (`\\` is a line break in wiki
# markup) and would turn the escape after it into a live `|`: it becomes the look-alike U+29F5.
_SPECIAL = re.compile(r"([|{}\[\]!])")
BACKSLASH = "\u29f5"


def marker_tag(marker: str) -> str:
    """The text that identifies a write; searched for in existing comments before writing again."""
    return f"(connbot ref {marker})"


def escape(text: str) -> str:
    """Any text (from a ticket, a person or an outside system) made inert inside wiki markup and
    table cells: markup characters escaped, backslashes replaced, lines joined."""
    text = " ".join(str(text).split()).replace("\\", BACKSLASH)
    return _SPECIAL.sub(r"\\\1", text) or " "


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:299] + "…"


def evidence(row: StepRow) -> str:
    parts = [row.summary] if row.summary else []
    parts += [f"{k}: {_value(v)}" for k, v in row.evidence.items()]
    return escape("; ".join(parts)[:1500])


def table(rows: list[StepRow]) -> str:
    head = "||Step||Level||Outcome||Evidence||By||When||"
    lines = [
        f"|{escape(r.title or r.step)}|L{r.level}|{escape(r.outcome)}|{evidence(r)}"
        f"|{escape(r.by or 'connbot')}"
        f"|{escape(r.at)} ({r.seconds:g} s)|"
        for r in rows
    ]
    return "\n".join([head, *lines])


def render(note: Note, marker: str) -> str:
    """The note as one wiki-markup comment of at most `LIMIT` characters, marker line last."""
    footer = "\n\n{color:#97a0af}" + escape(marker_tag(marker)) + "{color}"
    parts = [f"h3. {escape(note.heading)}", *(escape(line) for line in note.lines if line)]
    if note.rows:
        parts.append(table(note.rows))
    if note.next:
        parts.append(f"*Next:* {escape(note.next)}")
    body = "\n\n".join(parts)
    if len(body) + len(footer) <= LIMIT:
        return body + footer
    budget = LIMIT - len(footer) - len(TRUNCATED)
    kept, size = [], 0
    for line in body.split("\n"):
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)[:budget] + TRUNCATED + footer


def has_marker(body: str, marker: str) -> bool:
    """Whether a comment (one connbot's own account wrote) carries the marker."""
    return escape(marker_tag(marker)) in body

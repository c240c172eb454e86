"""Notes as Jira wiki markup (REST v2, Cloud and Server alike), within Jira's comment limit.

A comment is a heading, paragraphs, a table of the steps (outcome in words, what was found in one sentence,
who, when), what happens next, and the full evidence of each step as name/value tables inside a
collapsed block, ending with a small grey reference line carrying the write's marker: that line is
how a retried job recognises a comment it already made. Evidence is never dumped as JSON; when the
comment would pass Jira's limit, the evidence block is the first thing left out. A note for the
customer is its paragraphs only, plain (escaped like everything else), with the same reference line.
"""

from __future__ import annotations

import re

from integrations.tickets import Audience, Note, StepRow, evidence_rows

LIMIT = 32767
TRUNCATED = "\n\n*[connbot: this comment was truncated to fit Jira's limit; the full record is in connbot.]*"
NO_EVIDENCE = (
    "_The full evidence of each step is too long for a comment: it is on the run's page in connbot._"
)
# The collapsed block the full evidence goes in (Jira Cloud shows it closed, one click opens it).
EVIDENCE = ("{expand:Full evidence, step by step}", "{expand}")
# Characters that open markup able to add content or structure (table cells, macros, links and
# mentions, images), escaped with a backslash; text effects (`*bold*`, `-struck-`) are left, they
# only style the text. A backslash of the text cannot be escaped (`\\` is a line break in wiki
# markup) and would turn the escape after it into a live `|`: it becomes the look-alike U+29F5.
_SPECIAL = re.compile(r"([|{}\[\]!])")
BACKSLASH = "\u29f5"
# Text that begins like a block of markup (a heading, a quote, a list item, a rule) would be read as
# one at the start of a paragraph: it is opened with an invisible U+200B, which the block's pattern
# does not allow before it.
_BLOCK = re.compile(r"(?:(?:h[1-6]|bq)\.|[*#-]+)(?:\s|$)|-{4}", re.I)
START = "\u200b"
# Control characters and bidirectional overrides are not passed on: each is shown as U+FFFD.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def marker_tag(marker: str) -> str:
    """The text that identifies a write; searched for in existing comments before writing again."""
    return f"(connbot ref {marker})"


def escape(text: str) -> str:
    """Any text (from a ticket, a person or an outside system) made inert inside wiki markup and
    table cells: markup characters escaped, backslashes replaced, lines joined, control characters
    replaced, and a beginning that would open a block defused."""
    text = _CONTROL.sub("\ufffd", " ".join(str(text).split()).replace("\\", BACKSLASH))
    text = _SPECIAL.sub(r"\\\1", text) or " "
    return START + text if _BLOCK.match(text) else text


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def table(rows: list[StepRow]) -> str:
    """One row per step: its outcome in words, what was found in the step's one-sentence summary."""
    head = "||Step||Level||Outcome||Found||By||When||"
    lines = [
        f"|{escape(r.title or r.step)}|L{r.level}|{escape(r.said)}|{escape(_clip(r.summary, 600))}"
        f"|{escape(r.answerer or 'connbot')}"
        f"|{escape(r.at)} ({r.seconds:g} s)|"
        for r in rows
    ]
    return "\n".join([head, *lines])


def evidence_block(rows: list[StepRow]) -> str:
    """Each step's evidence as a name/value table under the step's number and title, collapsed."""
    parts = []
    for n, r in enumerate(rows, 1):
        items = evidence_rows(r.evidence)
        if items:
            cells = "\n".join(f"|{escape(name)}|{escape(_clip(value, 300))}|" for name, value in items)
            parts.append(f"*{n}. {escape(r.title or r.step)}*\n||Name||Value||\n{cells}")
    return "\n\n".join([EVIDENCE[0], *parts, EVIDENCE[1]]) if parts else ""


def render(note: Note, marker: str) -> str:
    """The note as one wiki-markup comment of at most `LIMIT` characters, marker line last."""
    footer = "\n\n{color:#97a0af}" + escape(marker_tag(marker)) + "{color}"
    lines = [escape(line) for line in note.lines if line]
    if note.audience == Audience.CUSTOMER:
        return "\n\n".join(lines)[: LIMIT - len(footer)] + footer
    parts = [f"h3. {escape(note.heading)}", *lines]
    if note.rows:
        parts.append(table(note.rows))
    if note.next:
        parts.append(f"*Next:* {escape(note.next)}")
    block = evidence_block(note.rows)
    for attempt in [[*parts, block], [*parts, NO_EVIDENCE]] if block else [parts]:
        body = "\n\n".join(attempt)
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

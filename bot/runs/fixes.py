"""What became of the fixes of the causes a run's questions were about: one run fact,
`TRIED_FIXES`, written as people answer an approval or a question about a cause (or no one does in
time), as the approved or answered fix is made and checked, and as an incident that held the run is
dismissed (`tried`, `checked`); read wherever a cause is stated (`stated`, `fates`: hand-overs,
later questions, the run's page, `runs show`, the API), so that a fix people acted on is never
proposed again as untried."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from bot.state.models import Run
from playbook.diagnosis import Cause

# The run's fact naming the cause the last question (or approval) was asked about, if any: what a
# closing comment names, since the findings after a fix no longer show the fault.
ASKED_CAUSE = "asked_cause"
# The run's fact saying, by cause, what became of its fix, one record per step (or incident) that
# acted on it, in the order they did: an approval of the fix (`kind` "approval": the step's title, who
# answered, whether they approved it, None when no one answered in time, with how long connbot
# waited, and, once the approved step is done, its result in the step's own words); a person's
# answer to the question that asked them to do the fix (`ask_cause`, `fixes_cause`: "answer", the
# answer's words and what they wrote with it), or that no one answered it in time ("unanswered": the
# level asked, how long connbot waited; the fix is still proposed after it); what connbot's check of the
# app found after a fix answered or approved ("check", written by `checked`); a person's dismissal of
# the incident that held the run as not a PBX problem ("dismissal"). Written by `tried`, mostly from
# `ASKED_CAUSE` (which the next question replaces); read wherever a cause is stated (`stated`), so
# that a fix rejected or tried already is not proposed as untried.
TRIED_FIXES = "tried_fixes"
# How much of a tried fix's result a statement of its cause shows (a step's summary: up to 2,000).
RESULT_SHOWN = 300


def stated(facts: Mapping[str, Any], cause: Cause) -> Cause:
    """The cause as a question, a hand-over or the run's page states it, from the run's `facts`: where
    people acted on its fix, what became of it (`fates`) instead of the fix; where they only said
    that the incident that held the run is not a PBX problem, that before the fix."""
    fixes = facts.get(TRIED_FIXES, {}).get(cause.id)
    if not fixes:
        return cause
    untried = all(fix["kind"] in ("dismissal", "unanswered") for fix in fixes.values())
    return dataclasses.replace(cause, action=fates(facts, cause.id) + (f" {cause.action}" if untried else ""))


def fates(facts: Mapping[str, Any], cause: str) -> str:
    """What became of the fix of `cause` (by id), one sentence per step or incident that acted on it."""
    return " ".join(map(_fate, facts.get(TRIED_FIXES, {}).get(cause, {}).values()))


def _fate(fix: Mapping[str, Any]) -> str:
    if fix["kind"] == "dismissal":
        return f"{fix['by']} said incident {fix['incident']} is not a PBX problem."
    if fix["kind"] == "unanswered":
        return f"Level {fix['level']} was asked to do its fix; no one answered within {fix['waited']}."
    check = f" {_sentence(fix['check'])}" if fix.get("check") else ""
    if fix["kind"] == "answer":
        # what they wrote, on one line (a person's text may span several)
        wrote = f" ({_cut(' '.join(fix['text'].split()).rstrip('. '))})" if fix.get("text") else ""
        return f"Asked to do its fix, {fix['by']} answered “{fix['answer']}”{wrote}.{check}"
    its = f"Its fix, “{fix['step']}”,"
    if fix["approved"] is None:
        return f"{its} was put for approval; no one answered within {fix['waited']}."
    if not fix["approved"]:
        return f"{its} was put for approval and rejected by {fix['by']}."
    result = fix.get("result")
    if result is None:
        return f"{its} was approved by {fix['by']}.{check}"
    return f"{its} was approved by {fix['by']} and tried: {_sentence(result)}{check}"


def _cut(said: str) -> str:
    """A step's summary or a person's words, in a cause's statement: at most `RESULT_SHOWN` characters."""
    return said if len(said) <= RESULT_SHOWN else said[: RESULT_SHOWN - 1] + "…"


def _sentence(said: str) -> str:
    cut = _cut(said)
    return cut if cut.endswith((".", "…")) else cut + "."


def tried(run: Run, key: str, cause: str | None = None, **what: object) -> None:
    """Note in `TRIED_FIXES`, under `key` (the step or incident that acted on it), what became of the
    fix of `cause`, by default the cause the last question or approval was about (nothing if none
    led): `kind` and the record's fields as the approval or the question is answered (or not in
    time), `result` (the summary of the approved step's result) as that is recorded."""
    if cause is None:
        asked = run.facts.get(ASKED_CAUSE)
        if not isinstance(asked, dict):
            return
        cause = asked["cause"]
    fixes = run.facts.get(TRIED_FIXES, {})
    of = fixes.get(cause, {})
    run.facts = {**run.facts, TRIED_FIXES: {**fixes, cause: {**of, key: {**of.get(key, {}), **what}}}}


def checked(run: Run, summary: str) -> None:
    """Note a check of the app (a step that made it reconnect: `app.recheck`) on every fix of the
    cause last asked about that people said they made, or approved, and that no check followed yet:
    the statement says what connbot found after it, not only what people answered."""
    asked = run.facts.get(ASKED_CAUSE)
    fixes = run.facts.get(TRIED_FIXES, {})
    if not isinstance(asked, dict) or asked["cause"] not in fixes:
        return
    of = fixes[asked["cause"]]
    done = {
        key: {**fix, "check": summary}
        for key, fix in of.items()
        if "check" not in fix and (fix["kind"] == "answer" or fix.get("approved"))
    }
    if done:
        run.facts = {**run.facts, TRIED_FIXES: {**fixes, asked["cause"]: {**of, **done}}}

"""The playbook engine: pure functions that say what happens next. No I/O of its own.

A run's position is a step and how often each step was visited. `plan()` says what to do at the
position (run an action, ask a person, take a decision the findings already give, hand the ticket
to a level, finish), and `follow()` says where an event (an outcome, a failure, a timeout, a
rejection, a decision) leads. The findings so far are given to `plan()`; the playbook's diagnosis
rules turn them into ranked causes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from playbook import facts as f
from playbook.diagnosis import Cause, diagnose, fill, rules_of
from playbook.models import APPROVE, REJECT, Playbook, Step


@dataclass(frozen=True)
class Position:
    step: str
    visits: Mapping[str, int] = field(default_factory=dict)
    approved: bool = False


@dataclass(frozen=True)
class Execute:
    """Run the step's action through its adapter."""

    step: Step


@dataclass(frozen=True)
class Ask:
    """Ask a person: a question whose answers are the step's outcomes, or an approval.

    `cause` is the leading cause when one is diagnosed: its statement and supporting findings go
    into the question (for an `ask_cause` step the question is the cause's own). `account` says
    whose account an approval changes, at the question's start: the run fills in what it knows
    (the user, the PBX)."""

    step: Step
    kind: str  # "question" | "approval"
    options: tuple[tuple[str, str], ...]
    text_label: str | None
    reason: str
    what: str  # the step's instructions (else its title), the findings they name filled in
    cause: Cause | None = None
    rejected: str | None = None  # for an approval: the title of the step a rejection leads to
    account: str = "the user's account"

    @property
    def question(self) -> str:
        """The question in plain words: an approval says what will change and what a rejection does."""
        if self.step.ask_cause and self.cause is not None:
            return self.cause.question()
        base = (
            f"If you approve, connbot will do this for {self.account}: {self.what} "
            + (
                f"If you reject, nothing is changed and the ticket goes on to “{self.rejected}”."
                if self.rejected
                else "If you reject, nothing is changed."
            )
            if self.kind == "approval"
            else self.what
        )
        if self.cause is None:
            return base
        return f"{base}\nconnbot's diagnosis: {self.cause.question()}"


@dataclass(frozen=True)
class Decide:
    """The findings already answer the step: record `outcome` (or the route taken) and go to `target`."""

    step: Step
    outcome: str
    target: str
    because: str


@dataclass(frozen=True)
class Escalate:
    """Hand the ticket to a level's queue and go on with that level's steps."""

    step: Step
    level: int
    then: str


@dataclass(frozen=True)
class Finish:
    """The run ends: the ticket is closed, or escalated to a level that takes over."""

    step: Step
    kind: str  # "close" | "escalate"
    level: int | None
    reason: str


Plan = Execute | Ask | Decide | Escalate | Finish


@dataclass(frozen=True)
class Outcome:
    value: str


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class TimedOut:
    pass


@dataclass(frozen=True)
class Rejected:
    pass


Event = Outcome | Failed | TimedOut | Rejected


def start(pb: Playbook) -> Position:
    return enter(pb, pb.start, {})


def enter(pb: Playbook, step_id: str, visits: Mapping[str, int]) -> Position:
    """Move to a step, counting the visit; a step past its max_visits passes on to on_exhausted."""
    counts = dict(visits)
    for _ in range(len(pb.steps) + 1):
        step = pb.steps[step_id]
        counts[step_id] = counts.get(step_id, 0) + 1
        if step.max_visits is None or counts[step_id] <= step.max_visits or step.on_exhausted is None:
            return Position(step_id, counts)
        step_id = step.on_exhausted
    raise RuntimeError(f"on_exhausted edges loop without end at {step_id}")  # the loader forbids this


def leading(pb: Playbook, facts: Mapping[str, Any]) -> Cause | None:
    """The leading cause of the findings, or None when they point at none (the fallback leads)."""
    cause = diagnose(rules_of(pb), facts)[0]
    return None if cause.id == rules_of(pb).fallback else cause


def plan(
    pb: Playbook,
    pos: Position,
    available: Callable[[str], bool],
    reason: str | None = None,
    facts: Mapping[str, Any] | None = None,
) -> Plan:
    """What to do at `pos`, knowing the run's `facts`. `reason` forces a question to a person (the
    adapter could not act)."""
    step = pb.steps[pos.step]
    facts = facts or {}
    if step.close is not None:
        return Finish(step, "close", None, step.close)
    if step.escalate is not None:
        if step.then is None:
            return Finish(step, "escalate", step.escalate, step.instructions or step.title)
        return Escalate(step, step.escalate, step.then)
    if step.is_route:
        return _route(pb, step, facts)
    found = f.findings(facts)
    for outcome, cond in step.decided.items():
        if f.holds(cond, found):
            because = f"the findings already say so: {f.stated(cond, found)}"
            return Decide(step, outcome, step.outcomes[outcome], because)
    assert step.action is not None
    cause = leading(pb, facts)
    if step.is_human or reason or not available(step.action):
        why = (
            "the playbook leaves this step to a person: connbot cannot do it itself"
            if step.is_human
            else (reason or f"no adapter is configured for {step.action}")
        )
        options = tuple((o, step.label(o)) for o in step.outcomes)
        return Ask(step, "question", options, step.ask_text, why, _what(step, found), cause)
    if step.approval and not pos.approved:
        return Ask(
            step,
            "approval",
            ((APPROVE, "Approve"), (REJECT, "Reject")),
            None,
            "it changes the user's account, so a person approves it first",
            _what(step, found),
            cause,
            pb.steps[step.on_rejected].title if step.on_rejected else None,
        )
    return Execute(step)


def _what(step: Step, found: Mapping[str, Any]) -> str:
    """What a question or an approval says the step does: its instructions with the findings they
    name filled in (only when asked: an automated step needs no words), else its title."""
    return fill(step.instructions, found) if step.instructions else step.title


def _route(pb: Playbook, step: Step, facts: Mapping[str, Any]) -> Decide:
    causes = diagnose(rules_of(pb), facts)
    lead = causes[0]
    found = f.findings(facts)
    why = f"leading cause: {lead.title} ({lead.confidence:.0%})" if lead.id != rules_of(pb).fallback else ""
    for n, route in enumerate(step.route, 1):
        if route.cause and lead.id not in route.cause:
            continue
        if route.facts and not f.holds(route.facts, found):
            continue
        because = why if route.cause else ""
        if route.facts:
            shown = f.stated(route.facts, found)
            because = f"{because}; {shown}" if because else shown
        return Decide(step, f"route {n}", route.goto, because)
    assert step.otherwise is not None  # the loader requires it
    return Decide(step, "otherwise", step.otherwise, why or "no cause stands out")


def decide(pb: Playbook, pos: Position, decision: Decide) -> Position:
    """Where a decision leads."""
    return enter(pb, decision.target, pos.visits)


def follow(pb: Playbook, pos: Position, event: Event) -> Position:
    """Where `event` at `pos` leads."""
    step = pb.steps[pos.step]
    target: str | None
    match event:
        case Outcome(value):
            target = step.outcomes[value]
        case Failed():
            target = step.on_failure or step.on_timeout
        case TimedOut():
            target = step.on_timeout or step.on_failure
        case Rejected():
            target = step.on_rejected
    if target is None:  # the loader makes every one of these edges exist
        raise ValueError(f"step {pos.step} has no edge for {event}")
    return enter(pb, target, pos.visits)


def approve(pos: Position) -> Position:
    return Position(pos.step, pos.visits, approved=True)


def continue_after(pb: Playbook, pos: Position, escalation: Escalate) -> Position:
    return enter(pb, escalation.then, pos.visits)


def edges(pb: Playbook) -> list[tuple[str, str, str]]:
    """Every edge of the graph as (from, label, to)."""
    return [(sid, label, target) for sid, step in pb.steps.items() for label, target in step.edges().items()]


ERROR, TIMEOUT, REJECTED = "ERROR", "TIMEOUT", "REJECTED"


DECIDED = "decided: "


class Unanswered(ValueError):
    """The walk reached a step whose outcome was not given; `path` ends with that step."""

    def __init__(self, message: str, path: list[tuple[str, str]]):
        super().__init__(message)
        self.path = path


def simulate(
    pb: Playbook,
    answers: Mapping[str, list[str]],
    facts: Mapping[str, Any] | None = None,
    found: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[tuple[str, str]], Finish]:
    """Walk the playbook with given outcomes and findings, no side effects: the (step, outcome) path
    and the end.

    `answers[step]` lists the outcomes of successive visits; besides the step's outcomes they may be
    ERROR (the action failed), TIMEOUT (no answer in time) or REJECTED (an approval step is approved
    unless told REJECTED). Outcomes are lower case, so these cannot clash with them. `facts` are
    the run's findings from the start, `found[step]` those a step adds when it runs: steps the
    findings decide are shown as `decided: <outcome>`, decisions by the route taken (`route 1`,
    `otherwise`).
    Raises ValueError naming the step when an answer is missing or not one of the step's, or a
    finding that is not one.
    """
    facts = f.check(facts or {})
    later = {step: f.check(values) for step, values in (found or {}).items()}
    pending = {k: list(v) for k, v in answers.items()}
    pos, path = start(pb), []
    for _ in range(10 * len(pb.steps) + 10):
        p = plan(pb, pos, lambda _action: True, facts=facts)
        if isinstance(p, Finish):
            path.append((pos.step, p.kind if p.kind == "close" else f"escalate to level {p.level}"))
            return path, p
        if isinstance(p, Escalate):
            path.append((pos.step, f"escalate to level {p.level}"))
            pos = continue_after(pb, pos, p)
            continue
        if isinstance(p, Decide):
            path.append((pos.step, p.outcome if p.step.is_route else DECIDED + p.outcome))
            pos = decide(pb, pos, p)
            continue
        if isinstance(p, Ask) and p.kind == "approval":
            if pending.get(pos.step, [None])[0] == REJECTED:
                pending[pos.step].pop(0)
                path.append((pos.step, REJECTED))
                pos = follow(pb, pos, Rejected())
            else:
                pos = approve(pos)
            continue
        step = pb.steps[pos.step]
        if not pending.get(pos.step):
            raise Unanswered(
                f"no outcome given for step {pos.step} (one of {', '.join(step.outcomes)}, ERROR, TIMEOUT)",
                [*path, (pos.step, "unanswered")],
            )
        value = pending[pos.step].pop(0)
        special: dict[str, Event] = {ERROR: Failed("simulated"), TIMEOUT: TimedOut(), REJECTED: Rejected()}
        event = special.get(value) or Outcome(value)
        if isinstance(event, Outcome) and value not in step.outcomes:
            raise ValueError(f"step {pos.step} has no outcome {value!r} (it has {', '.join(step.outcomes)})")
        if isinstance(event, Failed) and step.is_human:
            raise ValueError(f"step {pos.step} asks a person and cannot fail")
        if isinstance(event, Rejected) and not step.approval:
            raise ValueError(f"step {pos.step} asks for no approval, so it cannot be rejected")
        path.append((pos.step, value))
        facts = {**facts, **later.pop(pos.step, {})}
        pos = follow(pb, pos, event)
    raise ValueError("the walk did not end: the answers keep the run in a loop")

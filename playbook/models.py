"""The playbook file format (YAML), as pydantic models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

HUMAN = "human"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DOES = re.compile(r"\s*\(connbot [^)]*\)$")  # what connbot does on an answer, closing its label


@dataclass(frozen=True)
class ActionSpec:
    """An action as the playbook sees it: its full name, outcomes and whether it changes an account."""

    name: str
    outcomes: tuple[str, ...]
    changes_account: bool
    method: str
    doc: str


# The answers of an approval prompt.
APPROVE, REJECT = "approve", "reject"


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `45s`, `30m`, `4h` or `2d`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"expected a duration such as 45s, 30m, 4h or 2d, got {value!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Route(BaseModel):
    """One branch of a decision step: taken when the leading cause is one of `cause` and/or the
    findings meet `facts` (both, when both are given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cause: list[StepId] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
    goto: StepId

    @field_validator("cause", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Step(BaseModel):
    """One step: an action with outcome edges, a decision (`route`) on the diagnosis, or an end
    (`close`, or `escalate` to a level).

    An escalation with `then` hands the ticket to that level and continues there. `decided` maps
    outcomes to conditions on the findings: when one holds, the step is recorded as decided with
    that outcome and neither run nor asked. A human step with `ask_cause` asks the leading cause's
    own question, its supporting findings in it; a human step with `fixes_cause` asks people to put
    right what the findings show, so their answer is said with the cause its question stated, as an
    `ask_cause` step's is (`bot/runs/fixes.py`). A step with `ask_customer` (one of its outcomes)
    is something the user can do: where no adapter does it and the ticket has a customer, the
    customer is asked on the ticket and their reply leads to that outcome, its text the step's input.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=150)
    level: int = Field(1, ge=1, le=9)
    instructions: str = Field(
        "",
        description="what the step does, in words for a person (a question, or what an approval changes); "
        "it may name findings in braces ({account_missing}), filled in when the step is asked",
    )
    action: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    outcomes: dict[str, StepId] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    on_failure: StepId | None = None
    timeout: Duration | None = None
    on_timeout: StepId | None = None
    approval: bool = False
    on_rejected: StepId | None = None
    ask_text: str | None = None
    collect: str | None = None
    max_visits: int | None = Field(None, ge=1)
    on_exhausted: StepId | None = None
    close: str | None = None
    escalate: int | None = Field(None, ge=2, le=9)
    then: StepId | None = None
    route: list[Route] = Field(default_factory=list)
    otherwise: StepId | None = None
    decided: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ask_cause: bool = False
    fixes_cause: bool = False
    ask_customer: str | None = None

    @property
    def is_end(self) -> bool:
        return self.close is not None or (self.escalate is not None and self.then is None)

    @property
    def is_human(self) -> bool:
        return self.action == HUMAN

    @property
    def is_route(self) -> bool:
        return bool(self.route) or self.otherwise is not None

    def edges(self) -> dict[str, str]:
        """Every edge out of this step, labelled by what takes it."""
        edges = {f"outcome {k!r}": v for k, v in self.outcomes.items()}
        edges.update({f"route {n + 1}": r.goto for n, r in enumerate(self.route)})
        for label in ("on_failure", "on_timeout", "on_rejected", "on_exhausted", "then", "otherwise"):
            target = getattr(self, label)
            if target:
                edges[label] = target
        return edges

    def route_taken(self, outcome: str) -> Route | None:
        """The route a decision recorded as `outcome` took (its edge, "route N"); None for another."""
        return next((r for n, r in enumerate(self.route, 1) if outcome == f"route {n}"), None)

    def label(self, outcome: str) -> str:
        return self.labels.get(outcome) or outcome.replace("_", " ").capitalize()

    def said(self, outcome: str) -> str:
        """An answer as its row reads it: the label without what connbot does on it (a closing
        `(connbot checks again)` tells the person who answers, on the button)."""
        return _DOES.sub("", self.label(outcome))


class Playbook(BaseModel):
    """A whole playbook: its steps keyed by id, where it starts, the default wait for people, and
    (set by the loader) the diagnosis rules its decisions use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StepId
    title: str
    start: StepId
    timeout: Duration = 4 * 3600.0
    steps: dict[StepId, Step] = Field(min_length=1)

    _rules: object = PrivateAttr(None)  # playbook.diagnosis.Rules, set by the loader; read with rules_of()

    def wait_for(self, step: Step) -> float:
        return step.timeout or self.timeout

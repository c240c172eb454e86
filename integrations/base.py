"""The adapter interface: actions, their results, their errors, and how adapters are found.

An adapter is a class with a `name` (the same string as its entry point in the group
`connbot.adapters`) and methods marked with `@action`. Each action takes one `ActionInput` and
returns one `ActionResult` whose outcome is a member of the action's closed enum: the playbook
branches on those outcomes, and `connbot playbook validate` checks them against the enums.

Errors an adapter may raise (anything else is a bug and fails loudly):

    AdapterError
     ├── TransientError      timeouts, 429, 5xx: retried at the transport, then a failed step
     ├── PermanentError      4xx, bad data: a failed step with the message
     │    └── RefusedError   the connection was refused: a finding, not retried (but an effect is)
     ├── NotConfiguredError  the adapter lacks settings for this: a human is asked instead
     └── UnsupportedError    the device cannot do it (capabilities): a human is asked instead
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, field_validator

from integrations.settings import Sections
from playbook.facts import check as check_findings
from playbook.models import ActionSpec

GROUP = "connbot.adapters"


class AdapterError(Exception):
    """Something went wrong talking to an outside system. `status` is the HTTP status, if any. The
    message, which may quote the system's own words, is cut to `MESSAGE` characters: it goes into
    summaries, evidence and log lines."""

    MESSAGE = 1000

    def __init__(self, message: str, status: int | None = None, facts: dict[str, Any] | None = None):
        self.status = status
        self.facts: dict[str, Any] = facts or {}
        super().__init__(message if len(message) <= self.MESSAGE else message[: self.MESSAGE - 1] + "…")

    def found(self, **facts: Any) -> AdapterError:
        """Attach findings (checked like a result's) observed before the failure; returns self."""
        self.facts.update(check_findings(facts))
        return self


class TransientError(AdapterError):
    """Worth retrying: timeouts, dropped connections, 429, 5xx."""


class PermanentError(AdapterError):
    """Retrying will not help: 4xx other than 429, malformed answers."""


class RefusedError(PermanentError):
    """The system refused the connection: nothing listens there. To a check, a fact about the system,
    not a fault to retry; an effect (connbot's own write, `bot.runs.outbox`) is retried, since the
    system it writes to refuses connections while it is down or restarting."""


class NotConfiguredError(AdapterError):
    """The adapter has no settings for this action; a person does it instead."""


class UnsupportedError(AdapterError):
    """The device or system cannot do this action; a person does it instead."""


class ActionInput(BaseModel):
    """What an action is given: who the ticket is about and what earlier steps found."""

    ticket_key: str
    user: str | None = Field(None, description="the user's PBX identity: extension or SIP username")
    reporter_email: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict, description="non-secret facts from earlier steps")
    params: dict[str, Any] = Field(default_factory=dict, description="the step's params from the playbook")


class ActionResult(BaseModel):
    """An action's answer: an outcome from the action's enum, a one-line summary, evidence.

    `facts` are merged into the run's facts for later steps (e.g. the device id found); those
    named in `playbook.facts.Findings` are findings, type-checked here, that the diagnosis reads.
    Evidence and facts must never hold secrets.
    """

    outcome: str
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)

    @field_validator("facts")
    @classmethod
    def _typed_findings(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {**value, **check_findings(value)}

    def found(self, **facts: Any) -> ActionResult:
        """Add findings (checked against `Findings`); returns self, for `return result(...).found(...)`."""
        self.facts.update(check_findings(facts))
        return self


F = TypeVar("F", bound=Callable[..., ActionResult])


def action(outcomes: type[enum.Enum], *, changes_account: bool = False) -> Callable[[F], F]:
    """Mark an adapter method as an action with a closed set of outcomes."""

    def mark(func: F) -> F:
        # A marker attribute on the function object, which mypy does not model.
        func.__connbot_action__ = (  # type: ignore[attr-defined]
            tuple(str(o.value) for o in outcomes),
            changes_account,
        )
        return func

    return mark


def result(outcome: enum.Enum, summary: str, **evidence: Any) -> ActionResult:
    """Shorthand for an `ActionResult` with evidence given as keywords."""
    return ActionResult(outcome=str(outcome.value), summary=summary, evidence=evidence)


class Adapter(abc.ABC):
    """Base of every adapter. Subclasses set `name` and mark actions with `@action`."""

    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def configure(cls, sections: Sections) -> Adapter | None:
        """Build the adapter from its settings sections (the single PBX's, or one PBX instance's
        in a fleet); None when they do not configure it.

        Settings that are present but invalid raise `integrations.settings.SettingsError`.
        """

    @classmethod
    def actions(cls) -> dict[str, ActionSpec]:
        specs = {}
        for attr in dir(cls):
            marked = getattr(getattr(cls, attr), "__connbot_action__", None)
            if marked:
                outcomes, changes = marked
                doc = (getattr(cls, attr).__doc__ or "").strip().split("\n")[0]
                name = f"{cls.name}.{attr}"
                specs[name] = ActionSpec(name, outcomes, changes, attr, doc)
        return specs

    def run(self, spec: ActionSpec, inp: ActionInput) -> ActionResult:
        res: ActionResult = getattr(self, spec.method)(inp)
        if res.outcome not in spec.outcomes:
            raise PermanentError(
                f"{spec.name} answered outcome {res.outcome!r}, not one of {list(spec.outcomes)}"
            )
        return res


P = TypeVar("P")


def installed(group: str, base: type, name_of: Callable[[type[P]], str]) -> list[type[P]]:
    """Every class installed under the entry-point `group`: each a `base` (the class `name_of` takes)
    whose name is its entry point's."""
    classes: list[type[P]] = []
    for ep in entry_points(group=group):
        cls = ep.load()
        if not _subclass(cls, base) or name_of(cls) != ep.name:
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a {base.__name__} named {ep.name!r}")
        classes.append(cls)
    return classes


def _subclass(obj: object, base: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, base)


def discover() -> list[type[Adapter]]:
    """Every adapter class installed under the entry-point group `connbot.adapters`."""
    return installed(GROUP, Adapter, _adapter_name)


def _adapter_name(cls: type[Adapter]) -> str:
    return cls.name


class Registry:
    """The actions known (from every installed adapter) and those that can run (configured ones)."""

    def __init__(self, classes: Iterable[type[Adapter]], adapters: Iterable[Adapter] = ()):
        self.catalogue: dict[str, ActionSpec] = {}
        for cls in classes:
            self.catalogue.update(cls.actions())
        self.adapters: dict[str, Adapter] = {}
        for adapter in adapters:
            self.catalogue.update(type(adapter).actions())
            self.adapters[adapter.name] = adapter

    @classmethod
    def configure(cls, classes: Iterable[type[Adapter]], sections: Sections) -> Registry:
        """Every action of `classes`, and an adapter of each class that `sections` configure."""
        classes = list(classes)
        return cls(classes, [a for a in (c.configure(sections) for c in classes) if a is not None])

    def available(self, action_name: str) -> bool:
        return action_name.split(".", 1)[0] in self.adapters and action_name in self.catalogue

    def execute(self, action_name: str, inp: ActionInput) -> ActionResult:
        if not self.available(action_name):
            raise NotConfiguredError(f"no configured adapter for {action_name}")
        spec = self.catalogue[action_name]
        return self.adapters[action_name.split(".", 1)[0]].run(spec, inp)

    def outcomes(self) -> Mapping[str, tuple[str, ...]]:
        return {name: spec.outcomes for name, spec in self.catalogue.items()}

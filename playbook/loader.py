"""Load a playbook file and validate the whole graph, reporting every problem at once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from playbook import compare, facts
from playbook.diagnosis import Rules, load_rules, placeholders
from playbook.errors import PlaybookError, message
from playbook.models import ActionSpec, Playbook, Step

DEFAULT = Path(__file__).with_name("playbooks") / "connection_issues.yaml"


def load(path: Path | None, catalogue: Mapping[str, ActionSpec], rules: Rules | None = None) -> Playbook:
    """Read, parse and check a playbook against its diagnosis rules (default: the shipped ones).
    Raises `PlaybookError` listing every problem."""
    path = path or DEFAULT
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(source, [f"cannot read the file: {exc}"]) from None
    return parse(text, catalogue, source, rules)


def parse(
    text: str,
    catalogue: Mapping[str, ActionSpec],
    source: str = "<playbook>",
    rules: Rules | None = None,
) -> Playbook:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookError(source, [f"not valid YAML: {exc}"]) from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise PlaybookError(source, ["the YAML nests too deeply"]) from None
    if not isinstance(data, dict):
        raise PlaybookError(source, ["expected a mapping with name, title, start and steps"])
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise PlaybookError(source, [_where(err["loc"]) + message(err) for err in exc.errors()]) from None
    except RecursionError:  # YAML aliases can make a structure that contains itself
        raise PlaybookError(source, ["the YAML nests too deeply or an alias refers to itself"]) from None
    rules = rules or load_rules()
    problems = check(playbook, catalogue, rules)
    if problems:
        raise PlaybookError(source, problems)
    playbook._rules = rules
    return playbook


def dump(pb: Playbook) -> str:
    """The playbook's content as canonical JSON: what a version is the hash of, and what is kept of it."""
    return json.dumps(pb.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def version(content: str) -> str:
    """A playbook version: the SHA-256 of its canonical content (`dump`), in hex. Comments and the
    layout of the YAML file are not content; a changed title, edge or timeout is."""
    return hashlib.sha256(content.encode()).hexdigest()


def restore(content: str, rules: Rules) -> Playbook:
    """A playbook kept as `dump` made it (checked when it was loaded), with the diagnosis rules."""
    playbook = Playbook.model_validate_json(content)
    playbook._rules = rules
    return playbook


def _where(loc: tuple[int | str, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "steps":
        rest = ".".join(str(p) for p in loc[2:])
        return f"step {loc[1]}: " + (f"{rest}: " if rest else "")
    return ".".join(str(p) for p in loc) + ": " if loc else ""


def check(pb: Playbook, catalogue: Mapping[str, ActionSpec], rules: Rules) -> list[str]:
    """Every problem with the graph, each naming its step."""
    problems: list[str] = []
    if pb.start not in pb.steps:
        problems.append(f"start: no step named {pb.start!r}")
    for sid, step in pb.steps.items():
        problems += [f"step {sid}: {p}" for p in _check_step(step, catalogue)]
        problems += [f"step {sid}: {p}" for p in _check_findings(step, rules)]
        for label, target in step.edges().items():
            if target not in pb.steps:
                problems.append(f"step {sid}: {label} goes to missing step {target!r}")
    if pb.start in pb.steps:
        reachable = compare.reachable(pb, pb.start)
        problems += [
            f"step {sid}: unreachable from the start ({pb.start})" for sid in pb.steps if sid not in reachable
        ]
    for cycle in _cycles(pb):
        if not any(pb.steps[s].max_visits for s in cycle):
            problems.append(
                f"step {cycle[0]}: in a cycle without a bound ({' -> '.join(cycle)}); set max_visits and "
                "on_exhausted on one of its steps"
            )
    return problems


def _check_findings(step: Step, rules: Rules) -> list[str]:
    """The parts of a step that read the findings and the diagnosis."""
    problems = []
    for n, route in enumerate(step.route, 1):
        if not route.cause and not route.facts:
            problems.append(f"route {n}: needs a cause, facts, or both")
        unknown = [c for c in route.cause if c not in rules.causes]
        if unknown:
            problems.append(
                f"route {n}: no diagnosis rule for cause {', '.join(unknown)} "
                f"(known: {', '.join(rules.causes)})"
            )
        if route.facts:
            problems += [f"route {n}: facts: {p}" for p in facts.check_condition(route.facts)]
    for outcome, cond in step.decided.items():
        if outcome not in step.outcomes:
            problems.append(f"decided: {outcome!r} is not one of the step's outcomes")
        problems += [f"decided: {outcome}: {p}" for p in facts.check_condition(cond)]
    for key in ("ask_cause", "fixes_cause"):
        if getattr(step, key) and not step.is_human:
            problems.append(f"{key} goes with action: human (a question to a person)")
    try:
        named = placeholders(step.instructions)
    except ValueError as exc:
        problems.append(f"instructions: {exc}")
    else:
        if named and step.is_end:
            problems.append("instructions: an end's are written as they are, so they name no findings")
    return problems


def _check_step(step: Step, catalogue: Mapping[str, ActionSpec]) -> list[str]:
    problems = []
    if step.is_route:
        if step.otherwise is None:
            problems.append("a decision (route) needs otherwise: the step when no route applies")
        if step.action or step.outcomes or step.close is not None or step.escalate is not None:
            problems.append("a decision (route) has no action, outcomes, close or escalate")
        return problems
    end_fields = step.close is not None or step.escalate is not None
    if end_fields:
        if step.close is not None and step.escalate is not None:
            problems.append("an end either closes or escalates, not both")
        if step.close is not None and not step.close.strip():
            problems.append("close needs the reason to write on the ticket")
        if step.escalate is not None and step.escalate <= step.level:
            problems.append(
                f"escalates to level {step.escalate}, which is not above its own level {step.level}"
            )
        if step.then is not None and step.close is not None:
            problems.append("then goes with escalate, not close")
        if step.action or step.outcomes:
            problems.append("an end has no action or outcomes")
        return problems
    if step.then is not None:
        problems.append("then goes with escalate")
    if not step.action:
        problems.append(
            "an end must be 'close: <reason>' or 'escalate: <level>'; this step has neither and no action"
        )
        return problems
    if step.is_human:
        if not step.outcomes:
            problems.append("a human step needs the outcomes a person can answer")
        if not step.on_timeout:
            problems.append("waits for a person but has no on_timeout edge")
    else:
        spec = catalogue.get(step.action)
        if spec is None:
            problems.append(f"unknown action {step.action!r}")
        else:
            missing = [o for o in spec.outcomes if o not in step.outcomes]
            extra = [o for o in step.outcomes if o not in spec.outcomes]
            if missing:
                problems.append(f"outcomes without an edge: {', '.join(missing)}")
            if extra:
                problems.append(
                    f"{step.action} has no outcome {', '.join(extra)} (it has {', '.join(spec.outcomes)})"
                )
            if spec.changes_account and not step.approval:
                problems.append(f"{step.action} changes an account, so the step needs approval: true")
        if not step.on_failure:
            problems.append("has no on_failure edge for when the action fails")
    if step.approval:
        if not step.on_rejected:
            problems.append("asks for approval but has no on_rejected edge")
        if not step.on_timeout:
            problems.append("waits for approval but has no on_timeout edge")
    if step.max_visits and not step.on_exhausted:
        problems.append("max_visits needs an on_exhausted edge")
    if step.ask_customer is not None and step.ask_customer not in step.outcomes:
        problems.append(
            f"ask_customer: {step.ask_customer!r} is not one of the step's outcomes "
            f"(the one a reply from the customer leads to)"
        )
    if step.collect and not step.ask_text:
        problems.append("collect needs ask_text, the question whose answer it stores")
    unknown_labels = [k for k in step.labels if k not in step.outcomes]
    if unknown_labels:
        problems.append(f"labels for outcomes it does not have: {', '.join(unknown_labels)}")
    return problems


def _cycles(pb: Playbook) -> list[list[str]]:
    """Strongly connected components that contain a cycle (Tarjan), each in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in pb.steps[v].edges().values():
            if w not in pb.steps:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in pb.steps[v].edges().values():
                found.append(sorted(component, key=list(pb.steps).index))

    for sid in pb.steps:
        if sid not in index:
            visit(sid)
    return found

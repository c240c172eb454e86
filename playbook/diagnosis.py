"""Diagnosis: from a run's findings to ranked causes. Pure: no I/O besides loading the rules file.

The rules are data (playbook/playbooks/diagnosis.yaml, or a team's file): each cause has clauses
that support it and clauses against it, each a condition on findings with a weight and a plain
note. A cause's confidence is the sum of its matching support weights less its matching contrary
weights, clipped to 0..1. Causes rank by confidence, then by their order in the file; the leading
cause is the first at or above the threshold, else the fallback cause (`unknown`).
"""

from __future__ import annotations

import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from playbook import facts as f
from playbook.errors import PlaybookError, message
from playbook.models import Playbook, StepId

DEFAULT = Path(__file__).with_name("playbooks") / "diagnosis.yaml"


def placeholders(template: str) -> list[str]:
    """The finding names a template refers to; ValueError for anything but plain `{name}`."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion or name not in f.NAMES:
            raise ValueError(f"{{{name}}} is not a finding (write {{name}} with a finding's name)")
        names.append(name)
    return names


class Clause(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, Any]
    weight: float = Field(gt=0, le=1)
    note: str = Field(min_length=1, max_length=300)

    @field_validator("when")
    @classmethod
    def _condition(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = f.check_condition(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("note")
    @classmethod
    def _note(cls, value: str) -> str:
        placeholders(value)
        return value


class CauseRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=120)
    level: int = Field(1, ge=1, le=9, description="the level whose people can fix it")
    says: str = Field(min_length=1, max_length=300, description="the cause in plain words")
    fix: str = Field(min_length=1, max_length=300, description="what would confirm or fix it")
    fallback: bool = False
    incident: bool = Field(
        False, description="a fault of the PBX instance itself: every user of it is affected (an incident)"
    )
    support: list[Clause] = Field(default_factory=list)
    against: list[Clause] = Field(default_factory=list)

    @field_validator("says", "fix")
    @classmethod
    def _template(cls, value: str) -> str:
        placeholders(value)
        return value


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.5, gt=0, le=1)
    causes: dict[StepId, CauseRule] = Field(min_length=1)

    @property
    def fallback(self) -> str:
        return next(cid for cid, c in self.causes.items() if c.fallback)


@dataclass(frozen=True)
class Cause:
    """One ranked cause: how confident, why, what speaks against it, and what to do."""

    id: str
    title: str
    confidence: float
    level: int
    statement: str
    action: str
    supporting: tuple[str, ...]
    contrary: tuple[str, ...]
    incident: bool = False  # a fault of the PBX instance: its tickets are joined into one incident

    def found(self) -> str:
        """The cause in plain words with the findings that support it."""
        why = f": {'; '.join(self.supporting)}" if self.supporting else ""
        return f"{self.statement}{why}"

    def question(self) -> str:
        """The one specific question for the person who can fix it, the supporting facts in it."""
        return f"{self.found()}. {self.action}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cause": self.id,
            "title": self.title,
            "confidence": self.confidence,
            "level": self.level,
            "statement": self.statement,
            "action": self.action,
            "supporting": list(self.supporting),
            "contrary": list(self.contrary),
            "incident": self.incident,
        }


class _Fill(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def fill(template: str, findings: Mapping[str, Any]) -> str:
    """A template (a cause's texts, a step's instructions) with the findings it names in words; "?"
    for one not observed."""
    return template.format_map(_Fill({k: f.in_words(k, v) for k, v in findings.items()}))


# What `diagnose` made of each distinct set of findings, by the rules' id (the rules held meanwhile,
# so that no other object takes their id): at most RANKED sets, then it starts afresh.
RANKED = 4096
_RANKED: dict[tuple[int, tuple[tuple[str, Any], ...]], tuple[Cause, ...]] = {}
_HELD: dict[int, Rules] = {}
_MAKING = threading.Lock()


def diagnose(rules: Rules, facts: Mapping[str, Any]) -> tuple[Cause, ...]:
    """Ranked causes, the leading one first; causes with no supporting finding are left out. Ranked
    once per distinct findings: a run's step asks of the same findings several times (its plan, the
    check for an incident, the next plan), and the tickets of one outage share theirs."""
    key = _findings_key(facts)
    if key is None:
        return _diagnose(rules, facts)
    ranked = _RANKED.get((id(rules), key))
    if ranked is None:
        ranked = _diagnose(rules, facts)
        with _MAKING:
            if len(_RANKED) >= RANKED:
                _RANKED.clear()
                _HELD.clear()
            _HELD[id(rules)] = rules
            _RANKED[(id(rules), key)] = ranked
    return ranked


def _findings_key(facts: Mapping[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The facts a diagnosis reads (those named as findings), hashable; None if one cannot be."""
    key = tuple(
        (name, tuple(value) if isinstance(value, list) else value)
        for name in f.Findings.model_fields
        if name in facts
        for value in (facts[name],)
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _diagnose(rules: Rules, facts: Mapping[str, Any]) -> tuple[Cause, ...]:
    found = f.findings(facts)
    ranked = []
    for order, (cid, rule) in enumerate(rules.causes.items()):
        if rule.fallback:
            continue
        support = [c for c in rule.support if f.holds(c.when, found)]
        if not support:
            continue
        against = [c for c in rule.against if f.holds(c.when, found)]
        score = sum(c.weight for c in support) - sum(c.weight for c in against)
        ranked.append((round(min(1.0, max(0.0, score)), 2), order, cid, rule, support, against))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    causes = [
        Cause(
            cid,
            rule.title,
            conf,
            rule.level,
            fill(rule.says, found),
            fill(rule.fix, found),
            tuple(fill(c.note, found) for c in support),
            tuple(fill(c.note, found) for c in against),
            rule.incident,
        )
        for conf, _, cid, rule, support, against in ranked
    ]
    if not causes or causes[0].confidence < rules.threshold:
        rule = rules.causes[rules.fallback]
        fallback = Cause(
            rules.fallback,
            rule.title,
            0.0,
            rule.level,
            fill(rule.says, found),
            fill(rule.fix, found),
            (),
            (),
        )
        causes.insert(0, fallback)
    return tuple(causes)


def rules_of(pb: Playbook) -> Rules:
    """The diagnosis rules a playbook was loaded with."""
    if not isinstance(pb._rules, Rules):
        raise RuntimeError("the playbook was not loaded with diagnosis rules (playbook.loader sets them)")
    return pb._rules


# -- loading
def load_rules(extra: Path | None = None, replace: bool = False) -> Rules:
    """The shipped rules, extended (or replaced, with `replace`) by a team's file.

    A team's cause of an existing id replaces that cause; new ids are added after the shipped ones.
    Raises `PlaybookError` naming the cause and field of every problem."""
    shipped = {} if (extra and replace) else _read(DEFAULT)
    data = dict(shipped)
    if extra is not None:
        team = _read(extra)
        data = {
            "threshold": team.get("threshold", shipped.get("threshold", 0.5)),
            "causes": {**(shipped.get("causes") or {}), **(team.get("causes") or {})},
        }
    return parse_rules(data, str(extra or DEFAULT))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(str(path), [f"cannot read the file: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(str(path), [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("causes"), dict):
        raise PlaybookError(str(path), ["expected a mapping with causes: {cause_id: {...}}"])
    return data


def parse_rules(data: Any, source: str = "<rules>") -> Rules:
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        raise PlaybookError(source, [_where(e["loc"]) + message(e) for e in exc.errors()]) from None
    fallbacks = [cid for cid, c in rules.causes.items() if c.fallback]
    problems = []
    if len(fallbacks) != 1:
        problems.append(f"exactly one cause needs fallback: true (found {len(fallbacks)})")
    problems += [
        f"cause {cid}: a cause without support clauses is never found (only the fallback has none)"
        for cid, c in rules.causes.items()
        if not c.support and not c.fallback
    ]
    if problems:
        raise PlaybookError(source, problems)
    return rules


def _where(loc: tuple[int | str, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "causes":
        rest = ".".join(str(p) for p in loc[2:])
        return f"cause {loc[1]}: " + (f"{rest}: " if rest else "")
    return ".".join(str(p) for p in loc) + ": " if loc else ""

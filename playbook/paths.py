"""Tables of expected paths: a team writes down how its playbook must go for given outcomes and
findings, and `connbot playbook test` (in CI, say) walks each row and says where a path went astray.

The file is YAML:

    playbook: connection_issues.yaml      # optional: beside this file; else the one tested
    paths:
      - name: the reconnection fixes it   # optional: shown in failures
        outcomes: check_status=failed force_reconnect=reconnected
        steps: check_status force_reconnect close_transient
        end: close                        # or: escalate to level N

`outcomes` lists `STEP=OUTCOME` (repeat a step for its later visits; besides the step's outcomes,
ERROR, TIMEOUT, REJECTED as `connbot playbook simulate` takes them) and `STEP.FINDING=VALUE`, a
finding the step adds when it runs (`true`/`false` are booleans). `steps` are the steps the run
visits, in order, its end included. Either may also be a YAML list of the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from playbook.engine import Unanswered, simulate
from playbook.errors import PlaybookError
from playbook.facts import written
from playbook.models import Playbook

Walk = tuple[dict[str, list[str]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    """One expected path: the outcomes and findings given, the steps and the end expected."""

    number: int
    name: str
    outcomes: tuple[str, ...]
    steps: tuple[str, ...]
    end: str

    @property
    def label(self) -> str:
        return f"row {self.number}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class Table:
    rows: list[Row]
    playbook: Path | None  # the playbook the table names, resolved beside the table


def _words(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(w for v in value for w in v.split())
    problems.append(f"{where}: expected words separated by spaces, or a list of them")
    return ()


def load_table(path: Path) -> Table:
    """Read a table of paths; `PlaybookError` names every row that is not well formed."""
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(source, [f"cannot read the file: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("paths"), list) or not data["paths"]:
        raise PlaybookError(source, ["expected a mapping with `paths:`, a list of rows"])
    unknown = set(data) - {"playbook", "paths"}
    problems = [f"unknown key {k!r} (expected playbook, paths)" for k in sorted(unknown)]
    named = data.get("playbook")
    if named is not None and not isinstance(named, str):
        problems.append("playbook: expected a file name")
    rows = []
    for n, item in enumerate(data["paths"], 1):
        where = f"row {n}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping with outcomes, steps and end")
            continue
        extra = sorted(set(item) - {"name", "outcomes", "steps", "end"})
        problems += [f"{where}: unknown key {k!r} (expected name, outcomes, steps, end)" for k in extra]
        missing = [k for k in ("outcomes", "steps", "end") if k not in item]
        problems += [f"{where}: missing {k}" for k in missing]
        end = item.get("end")
        if "end" in item and not (end == "close" or str(end).startswith("escalate to level ")):
            problems.append(f"{where}: end: expected close or 'escalate to level N', got {end!r}")
        if missing:
            continue
        outcomes = _words(item["outcomes"], f"{where}: outcomes", problems)
        bad = [w for w in outcomes if "=" not in w]
        problems += [f"{where}: outcomes: {w!r} is not STEP=OUTCOME or STEP.FINDING=VALUE" for w in bad]
        steps = _words(item["steps"], f"{where}: steps", problems)
        rows.append(Row(n, str(item.get("name") or ""), outcomes, steps, str(end)))
    if problems:
        raise PlaybookError(source, problems)
    return Table(rows, path.parent / named if named else None)


def parse(outcomes: tuple[str, ...] | list[str]) -> Walk:
    """`STEP=OUTCOME` and `STEP.FINDING=VALUE` words as the answers and findings `simulate` takes."""
    answers: dict[str, list[str]] = {}
    found: dict[str, dict[str, Any]] = {}
    for item in outcomes:
        key, _, value = item.partition("=")
        step, _, finding = key.partition(".")
        if finding:
            found.setdefault(step, {})[finding] = written(finding, value)
        else:
            answers.setdefault(step, []).append(value)
    return answers, found


def check(pb: Playbook, row: Row) -> str | None:
    """None when the playbook goes the row's way; else what went otherwise, naming the row."""
    answers, found = parse(row.outcomes)
    try:
        path, _ = simulate(pb, answers, found=found)
    except Unanswered as exc:
        return f"{row.label}: {exc} (took {' '.join(step for step, _ in exc.path)})"
    except ValueError as exc:
        return f"{row.label}: {exc}"
    taken = tuple(step for step, _ in path)
    end = path[-1][1]
    if taken == row.steps and end == row.end:
        return None
    lines = [f"{row.label}:"]
    if taken != row.steps:
        at = next((i for i, (a, b) in enumerate(zip(taken, row.steps, strict=False)) if a != b), None)
        at = at if at is not None else min(len(taken), len(row.steps))
        lines.append(f"  took     {' '.join(taken)}")
        lines.append(f"  expected {' '.join(row.steps)}")
        got = taken[at] if at < len(taken) else "(the end)"
        want = row.steps[at] if at < len(row.steps) else "(the end)"
        lines.append(f"  step {at + 1} is {got}, expected {want}")
    if end != row.end:
        lines.append(f"  ended {end!r}, expected {row.end!r}")
    return "\n".join(lines)

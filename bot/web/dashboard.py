"""The numbers behind the dashboard, computed in Python from plain rows so that SQLite and
PostgreSQL give the same answers.

A run "needed a human" when any of its steps was answered by a person (mode human or approval).
Its "end" is closed, or the level it was finally handed to. The step that "resolved" a closed
ticket is the last step before the close.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.state.models import Run, RunState

HUMAN_MODES = frozenset({"human", "approval"})


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of a set of durations, in seconds (None when there are none)."""

    count: int
    median: float | None
    p90: float | None


@dataclass
class Stats:
    total: int = 0
    ended: int = 0
    in_progress: int = 0
    per_day: list[tuple[dt.date, int]] = field(default_factory=list)
    closed_l1_no_human: int = 0
    ends: dict[str, int] = field(default_factory=dict)
    resolved_by: list[tuple[str, int]] = field(default_factory=list)
    resolution: Spread = Spread(0, None, None)
    human_wait: Spread = Spread(0, None, None)

    def share(self, count: int) -> float:
        """`count` as a fraction of the ended runs."""
        return count / self.ended if self.ended else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> Spread:
    return Spread(len(values), percentile(values, 50), percentile(values, 90))


def end_name(run: Run) -> str:
    return "closed" if run.end_kind == "close" else f"level {run.end_level}"


def compute(s: Session, today: dt.date, days: int = 30) -> Stats:
    """The dashboard's numbers over every run; runs per day over the last `days` days."""
    runs = list(s.scalars(select(Run).options(selectinload(Run.steps)).order_by(Run.id)))
    stats = Stats(total=len(runs))
    first = today - dt.timedelta(days=days - 1)
    per_day = Counter(r.created_at.date() for r in runs if r.created_at.date() >= first)
    stats.per_day = [
        (first + dt.timedelta(days=n), per_day.get(first + dt.timedelta(days=n), 0)) for n in range(days)
    ]
    ends: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    resolution: list[float] = []
    waits: list[float] = []
    for run in runs:
        human = [st for st in run.steps if st.mode in HUMAN_MODES]
        if human:
            waits.append(sum(st.seconds for st in human))
        if run.state != RunState.ENDED or run.ended_at is None:
            continue
        ends[end_name(run)] += 1
        resolution.append((run.ended_at - run.created_at).total_seconds())
        if run.end_kind != "close":
            continue
        worked = [st for st in run.steps if st.mode != "end"]
        if worked:
            resolved[worked[-1].title] += 1
        if not human and max((st.level for st in run.steps), default=1) == 1:
            stats.closed_l1_no_human += 1
    stats.ended = sum(ends.values())
    stats.in_progress = stats.total - stats.ended
    stats.ends = dict(sorted(ends.items(), key=lambda kv: (kv[0] != "closed", kv[0])))
    stats.resolved_by = resolved.most_common()
    stats.resolution = spread(resolution)
    stats.human_wait = spread(waits)
    return stats


def duration(seconds: float | None) -> str:
    """A duration for people: 42 s, 3.5 min, 2.1 h, 1.5 d; a dash for none."""
    if seconds is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"

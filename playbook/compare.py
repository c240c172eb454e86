"""Two versions of a playbook side by side: which steps changed, and which steps lie ahead of a step
(a run there may still reach them)."""

from __future__ import annotations

from playbook.models import Playbook


def reachable(pb: Playbook, start: str) -> set[str]:
    """The steps a run at `start` may still visit, `start` included."""
    seen, todo = set(), [start]
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in pb.steps:
            continue
        seen.add(sid)
        todo.extend(pb.steps[sid].edges().values())
    return seen

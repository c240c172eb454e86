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


def changes(old: Playbook, new: Playbook) -> dict[str, str]:
    """Each step added, removed or changed from `old` to `new` (for a change, the fields that
    differ), in the order of `old` then the added ones of `new`. The playbook's own fields (start,
    timeout) are compared by the caller."""
    found: dict[str, str] = {}
    for sid, step in old.steps.items():
        if sid not in new.steps:
            found[sid] = "removed"
            continue
        before, after = step.model_dump(), new.steps[sid].model_dump()
        fields = [k for k in before if before[k] != after[k]]
        if fields:
            found[sid] = "changed: " + ", ".join(fields)
    found.update({sid: "added" for sid in new.steps if sid not in old.steps})
    return found

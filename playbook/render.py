"""Diagrams of a playbook's graph: Mermaid or Graphviz dot, one cluster per level."""

from __future__ import annotations

from playbook.models import Playbook, Step


def _label(step: Step) -> str:
    text = step.title.replace('"', "'")
    if step.action:
        text += f"\\n[{step.action}]"
    return text


def _edges(pb: Playbook) -> list[tuple[str, str, str]]:
    out = []
    for sid, step in pb.steps.items():
        by_target: dict[str, list[str]] = {}
        for label, target in step.edges().items():
            by_target.setdefault(target, []).append(label.replace("outcome ", "").replace("'", ""))
        out += [(sid, ", ".join(labels), target) for target, labels in by_target.items()]
    return out


def _levels(pb: Playbook) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for sid, step in pb.steps.items():
        group = "Ends" if step.is_end else f"Level {step.level}"
        groups.setdefault(group, []).append(sid)
    return groups


def mermaid(pb: Playbook) -> str:
    lines = ["flowchart TD"]
    for n, (group, sids) in enumerate(_levels(pb).items()):
        lines.append(f'  subgraph g{n}["{group}"]')
        for sid in sids:
            step = pb.steps[sid]
            shape = ('(["', '"])') if step.is_end else (('{{"', '"}}') if step.is_human else ('["', '"]'))
            lines.append(f"    {sid}{shape[0]}{_label(step).replace(chr(92) + 'n', '<br/>')}{shape[1]}")
        lines.append("  end")
    for src, label, dst in _edges(pb):
        lines.append(f'  {src} -->|"{label}"| {dst}')
    return "\n".join(lines) + "\n"


def dot(pb: Playbook) -> str:
    lines = [f'digraph "{pb.name}" {{', "  rankdir=TB;", '  node [shape=box, fontname="sans-serif"];']
    for n, (group, sids) in enumerate(_levels(pb).items()):
        lines.append(f'  subgraph cluster_{n} {{ label="{group}";')
        for sid in sids:
            step = pb.steps[sid]
            shape = "oval" if step.is_end else ("hexagon" if step.is_human else "box")
            lines.append(f'    {sid} [label="{_label(step)}", shape={shape}];')
        lines.append("  }")
    for src, label, dst in _edges(pb):
        lines.append(f'  {src} -> {dst} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"

"""Server-side SVG: the playbook graph with a run's path highlighted, and the dashboard's charts.

Everything is built as text with every label escaped (titles and outcomes are data), so pages
need neither JavaScript nor anything from the internet to draw them.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from playbook import engine
from playbook.models import Playbook, Step

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 56, 26, 46, 16


@dataclass(frozen=True)
class Trail:
    """What a run did on the graph: steps in visiting order, each step's last outcome, where it is now."""

    path: Sequence[str]
    outcomes: dict[str, str]
    current: str | None


def layers(pb: Playbook) -> list[list[str]]:
    """Steps in rows by their distance from the start (breadth first), in playbook order within a row."""
    depth = {pb.start: 0}
    queue = [pb.start]
    for sid in queue:
        for target in pb.steps[sid].edges().values():
            if target not in depth:
                depth[target] = depth[sid] + 1
                queue.append(target)
    rows: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for sid in pb.steps:
        rows[depth.get(sid, 0)].append(sid)
    return rows


def _kind(step: Step) -> str:
    if step.close is not None:
        return "end-close"
    if step.escalate is not None:
        return "end-escalate" if step.then is None else "escalate"
    return "human" if step.is_human else "auto"


def _lines(text: str, width: int, count: int) -> list[str]:
    lines = textwrap.wrap(text, width) or [""]
    if len(lines) > count:
        lines = lines[:count]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return lines


def playbook_graph(pb: Playbook, trail: Trail | None = None) -> Markup:
    """The playbook as an SVG graph; with a trail, visited steps and taken edges carry classes
    `visited` and `taken`, and the step the run is at carries `current`."""
    rows = layers(pb)
    widest = max(len(r) for r in rows)
    width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X + 60
    height = PAD * 2 + len(rows) * NODE_H + (len(rows) - 1) * GAP_Y
    pos: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(rows):
        left = (width - 60 - (len(row) * NODE_W + (len(row) - 1) * GAP_X)) / 2
        for c, sid in enumerate(row):
            pos[sid] = (left + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
    path = list(trail.path) if trail else []
    taken = set(itertools.pairwise(path))
    visited = set(path)
    out = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{escape(pb.title)} playbook">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" '
        'markerWidth="9" markerHeight="9" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker>'
        '<marker id="arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" '
        'markerWidth="9" markerHeight="9" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead taken"/></marker></defs>',
    ]
    labels: dict[tuple[str, str], list[str]] = {}
    for src, label, dst in engine.edges(pb):
        labels.setdefault((src, dst), []).append(label.replace("outcome ", "").replace("'", ""))
    for (src, dst), names in sorted(
        labels.items(), key=lambda kv: kv[0] in taken
    ):  # taken edges drawn on top
        is_taken = (src, dst) in taken
        out.append(
            f'<path class="edge{" taken" if is_taken else ""}" data-from="{src}" data-to="{dst}" '
            f'd="{_route(pos[src], pos[dst])}" marker-end="url(#arrow{"-taken" if is_taken else ""})">'
            f"<title>{escape(pb.steps[src].title)} → {escape(pb.steps[dst].title)}: "
            f"{escape(', '.join(names))}</title></path>"
        )
    for sid, step in pb.steps.items():
        x, y = pos[sid]
        classes = ["node", _kind(step)]
        if sid in visited:
            classes.append("visited")
        if trail and trail.current == sid:
            classes.append("current")
        title = _lines(step.title, 30, 2)
        out.append(
            f'<g class="{" ".join(classes)}" data-step="{sid}"><title>{escape(step.title)}'
            f"{' [' + escape(step.action) + ']' if step.action else ''} (level {step.level})</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8"/>'
        )
        for n, line in enumerate(title):
            out.append(f'<text x="{x + NODE_W / 2:.0f}" y="{y + 18 + n * 14:.0f}">{escape(line)}</text>')
        outcome = trail.outcomes.get(sid) if trail else None
        caption = outcome or (f"L{step.level} · {step.action}" if step.action else f"L{step.level}")
        out.append(
            f'<text class="{"outcome" if outcome else "caption"}" x="{x + NODE_W / 2:.0f}" '
            f'y="{y + NODE_H - 8:.0f}">{escape(_lines(caption, 32, 1)[0])}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _route(src: tuple[float, float], dst: tuple[float, float]) -> str:
    (x1, y1), (x2, y2) = src, dst
    if y2 > y1:  # downwards: bottom centre to top centre
        a, b = (x1 + NODE_W / 2, y1 + NODE_H), (x2 + NODE_W / 2, y2)
        mid = (a[1] + b[1]) / 2
        return f"M{a[0]:.0f},{a[1]:.0f} C{a[0]:.0f},{mid:.0f} {b[0]:.0f},{mid:.0f} {b[0]:.0f},{b[1]:.0f}"
    if y2 == y1:  # same row: bottom to bottom, dipping below the row
        a, b = (x1 + NODE_W / 2, y1 + NODE_H), (x2 + NODE_W / 2, y2 + NODE_H)
        dip = a[1] + GAP_Y * 0.7
        return f"M{a[0]:.0f},{a[1]:.0f} C{a[0]:.0f},{dip:.0f} {b[0]:.0f},{dip:.0f} {b[0]:.0f},{b[1]:.0f}"
    # back up: right edge to right edge, bulging out to the right
    a, b = (x1 + NODE_W, y1 + NODE_H / 2), (x2 + NODE_W, y2 + NODE_H / 2)
    bulge = max(a[0], b[0]) + 30 + abs(a[1] - b[1]) / 10
    return f"M{a[0]:.0f},{a[1]:.0f} C{bulge:.0f},{a[1]:.0f} {bulge:.0f},{b[1]:.0f} {b[0]:.0f},{b[1]:.0f}"


def columns(points: Sequence[tuple[str, int]], label: str) -> Markup:
    """A column chart of counts (e.g. runs per day); each column has a tooltip."""
    w, h, left, bottom = 640, 180, 30, 22
    top = max((v for _, v in points), default=0) or 1
    step = (w - left) / max(len(points), 1)
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<text class="axis" x="0" y="12">{top}</text><text class="axis" x="0" y="{h - bottom}">0</text>',
        f'<line class="axis" x1="{left}" y1="{h - bottom}" x2="{w}" y2="{h - bottom}"/>',
    ]
    for n, (name, value) in enumerate(points):
        bar_h = (h - bottom - 8) * value / top
        x = left + n * step + 2
        out.append(
            f'<rect class="bar" x="{x:.1f}" y="{h - bottom - bar_h:.1f}" width="{max(step - 4, 1):.1f}" '
            f'height="{bar_h:.1f}" data-value="{value}"><title>{escape(name)}: {value}</title></rect>'
        )
    for n in (0, len(points) - 1) if points else ():
        anchor = "start" if n == 0 else "end"
        x = left + n * step + (0 if n == 0 else step)
        out.append(
            f'<text class="axis" x="{x:.0f}" y="{h - 6}" text-anchor="{anchor}">{escape(points[n][0])}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def bars(items: Sequence[tuple[str, float, str]], label: str) -> Markup:
    """Horizontal bars of (name, value, shown text), scaled to the largest value."""
    w, row, name_w = 640, 26, 250
    top = max((v for _, v, _ in items), default=0) or 1
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {w} {max(len(items), 1) * row + 4}" role="img" aria-label="{escape(label)}">'
    ]
    for n, (name, value, shown) in enumerate(items):
        y = n * row + 2
        length = (w - name_w - 70) * value / top
        out.append(
            f'<text class="label" x="{name_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(_lines(name, 38, 1)[0])}</text>"
            f'<rect class="bar" x="{name_w}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" '
            f'data-value="{value:g}">'
            f"<title>{escape(name)}: {escape(shown)}</title></rect>"
            f'<text class="value" x="{name_w + length + 6:.1f}" y="{y + 17}">{escape(shown)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))

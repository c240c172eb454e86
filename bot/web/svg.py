"""Server-side SVG: the playbook graph with a run's path highlighted, and the dashboard's charts.

Everything is built as text with every label escaped (titles and outcomes are data), so pages
need neither JavaScript nor anything from the internet to draw them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import pairwise

from markupsafe import Markup, escape

from playbook import engine
from playbook.models import Playbook, Step

NODE_W, NODE_H, GAP_X, GAP_Y, PAD, BAND = 190, 56, 44, 78, 16, 26
LABEL_W = 26  # characters of an edge label before it is cut (the whole label is in its tooltip)


@dataclass(frozen=True)
class Trail:
    """What a run did on the graph: steps in visiting order, each step's last outcome in words (its
    step result's `said`; the edges are labelled with the codes), where it is now."""

    path: Sequence[str]
    said: dict[str, str]
    current: str | None


def layers(pb: Playbook, only: Collection[str] | None = None) -> list[tuple[int, list[str]]]:
    """Steps in rows, as (level, steps): by level first (a level's steps never share a row with
    another level's), then by distance from the start (breadth first), in playbook order within a row.
    With `only`, just those steps."""
    depth = {pb.start: 0}
    queue = [pb.start]
    for sid in queue:
        for target in pb.steps[sid].edges().values():
            if target not in depth:
                depth[target] = depth[sid] + 1
                queue.append(target)
    rows: dict[tuple[int, int], list[str]] = {}
    for sid, step in pb.steps.items():
        if only is None or sid in only:
            rows.setdefault((step.level, depth.get(sid, 0)), []).append(sid)
    return [(level, rows[(level, d)]) for level, d in sorted(rows)]


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


def _edge_label(label: str) -> str:
    return label.replace("outcome ", "").replace("'", "").replace("_", " ")


@dataclass
class _Grid:
    """Boxes on a grid of columns and rows. Edges run only in the gaps between rows and between
    columns, so no edge crosses a box; each edge gets its own lane in a gap."""

    rows: list[tuple[int, list[str]]]
    widest: int
    cell: dict[str, tuple[int, int]]  # step -> (row, column)
    used: dict[tuple[str, int], int]  # lanes taken per gap

    def x(self, col: int) -> float:
        return PAD + BAND + GAP_X / 2 + col * (NODE_W + GAP_X)

    def y(self, row: int) -> float:
        return PAD + row * (NODE_H + GAP_Y)

    def lane(self, kind: str, index: int, size: float) -> float:
        """The offset into a gap of `size` of the next edge there, clear of the gap's edges."""
        n = self.used.get((kind, index), 0)
        self.used[(kind, index)] = n + 1
        return 6 + (n * 7) % max(size - 12, 1)

    def route(self, src: str, dst: str, exit_x: float, entry_x: float) -> str:
        (r1, _), (r2, c2) = self.cell[src], self.cell[dst]
        top = self.y(r1) + NODE_H
        if r2 == r1 + 1:  # the next row: down, across in the gap, down
            mid = top + self.lane("row", r1, GAP_Y)
            points = [(exit_x, top), (exit_x, mid), (entry_x, mid), (entry_x, self.y(r2))]
        else:  # down into the gap, across to the column gap beside the target, along it, across, down
            below = top + self.lane("row", r1, GAP_Y)
            above = self.y(r2) - GAP_Y + self.lane("row", r2 - 1, GAP_Y)
            side = c2 if entry_x >= exit_x or c2 == 0 else c2 + 1
            channel = self.x(side) - GAP_X + self.lane("col", side, GAP_X)
            points = [
                (exit_x, top),
                (exit_x, below),
                (channel, below),
                (channel, above),
                (entry_x, above),
                (entry_x, self.y(r2)),
            ]
        return "M" + " L".join(f"{px:.0f},{py:.0f}" for px, py in points)


def playbook_graph(pb: Playbook, trail: Trail | None = None, path_only: bool = False) -> Markup:
    """The playbook as an SVG graph in bands by level, with outcome labels on its edges; with a trail,
    visited steps and taken edges carry classes `visited` and `taken`, and the step the run is at
    carries `current`. `path_only` draws just the trail's steps and the edges it took."""
    path = list(trail.path) if trail else []
    taken = set(pairwise(path))
    visited = set(path)
    rows = layers(pb, visited if path_only else None)
    if not rows:
        return Markup('<p class="empty">No step visited yet.</p>')
    widest = max(len(steps) for _, steps in rows)
    grid = _Grid(rows, widest, {}, {})
    for r, (_, steps) in enumerate(rows):
        for c, sid in enumerate(steps, (widest - len(steps)) // 2):
            grid.cell[sid] = (r, c)
    width = grid.x(widest) + PAD
    height = grid.y(len(rows)) - GAP_Y + NODE_H / 2 + PAD
    out = [
        f'<svg class="graph{" path-only" if path_only else ""}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" role="img" '
        f'aria-label="{escape(pb.title)} playbook{" (the run’s path)" if path_only else ""}">',
        "<defs>"
        + "".join(
            f'<marker id="arrow{suffix}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" '
            f'markerWidth="9" markerHeight="9" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" class="arrowhead{cls}"/></marker>'
            for suffix, cls in (("", ""), ("-taken", " taken"))
        )
        + "</defs>",
    ]
    for level in sorted({level for level, _ in rows}):
        band = [r for r, (lv, _) in enumerate(rows) if lv == level]
        y0, y1 = grid.y(band[0]) - GAP_Y / 3, grid.y(band[-1]) + NODE_H + GAP_Y / 3
        out.append(
            f'<g class="band" data-level="{level}"><rect x="2" y="{max(y0, 2):.0f}" width="{width - 4:.0f}" '
            f'height="{y1 - max(y0, 2):.0f}" rx="6"/><text x="{PAD}" y="{(y0 + y1) / 2:.0f}" '
            f'transform="rotate(-90 {PAD} {(y0 + y1) / 2:.0f})">Level {level}</text></g>'
        )
    labels: dict[tuple[str, str], list[str]] = {}
    for src, label, dst in engine.edges(pb):
        if src in grid.cell and dst in grid.cell and (not path_only or (src, dst) in taken):
            labels.setdefault((src, dst), []).append(_edge_label(label))
    exits: dict[str, list[str]] = {}
    entries: dict[str, list[str]] = {}
    for src, dst in labels:
        exits.setdefault(src, []).append(dst)
        entries.setdefault(dst, []).append(src)
    edges, texts = [], []
    for (src, dst), names in sorted(labels.items(), key=lambda kv: kv[0] in taken):  # taken on top
        is_taken = (src, dst) in taken
        outs, ins = exits[src], entries[dst]
        sx, dx = grid.x(grid.cell[src][1]), grid.x(grid.cell[dst][1])
        exit_x = sx + NODE_W * (outs.index(dst) + 1) / (len(outs) + 1)
        entry_x = dx + NODE_W * (ins.index(src) + 1) / (len(ins) + 1)
        full = ", ".join(names)
        taken_class, arrow = (" taken", "url(#arrow-taken)") if is_taken else ("", "url(#arrow)")
        edges.append(
            f'<path class="edge{taken_class}" data-from="{src}" data-to="{dst}" '
            f'd="{grid.route(src, dst, exit_x, entry_x)}" marker-end="{arrow}">'
            f"<title>{escape(pb.steps[src].title)} → {escape(pb.steps[dst].title)}: "
            f"{escape(full)}</title></path>"
        )
        shown = full if len(full) <= LABEL_W else full[: LABEL_W - 1].rstrip(", ") + "…"
        label_y = grid.y(grid.cell[src][0]) + NODE_H + 10 + 10 * (outs.index(dst) % 3)
        texts.append(
            f'<text class="edge-label{taken_class}" data-from="{src}" data-to="{dst}" '
            f'x="{exit_x + 3:.0f}" y="{label_y:.0f}">{escape(shown)}<title>{escape(full)}</title></text>'
        )
    out += edges + texts
    for sid, (r, c) in grid.cell.items():
        step = pb.steps[sid]
        x, y = grid.x(c), grid.y(r)
        classes = ["node", _kind(step)]
        if sid in visited:
            classes.append("visited")
        if trail and trail.current == sid:
            classes.append("current")
        out.append(
            f'<g class="{" ".join(classes)}" data-step="{sid}"><title>{escape(step.title)}'
            f"{' [' + escape(step.action) + ']' if step.action else ''} (level {step.level})</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8"/>'
        )
        for n, line in enumerate(_lines(step.title, 30, 2)):
            out.append(f'<text x="{x + NODE_W / 2:.0f}" y="{y + 18 + n * 14:.0f}">{escape(line)}</text>')
        said = trail.said.get(sid) if trail else None
        caption = _lines(said or step.action or "", 32, 1)[0]
        whole = f"<title>{escape(said)}</title>" if said else ""  # words cut to the box, whole as a tooltip
        out.append(
            f'<text class="{"outcome" if said else "caption"}" x="{x + NODE_W / 2:.0f}" '
            f'y="{y + NODE_H - 8:.0f}">{escape(caption)}{whole}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


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

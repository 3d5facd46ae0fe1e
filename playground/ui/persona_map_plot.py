"""The persona map as SVG (no Gradio imports): the model's persona space in two dimensions, with the replies of
a conversation on it as a trajectory, so drift away from the selected persona is something one *sees*.

Background: every character of the space (``python -m playground persona-space``) as a small dot; the shipped
personas and the role models labelled; the selected persona ringed. Foreground: each reply's point (the mean of
its residual rows, projected), numbered by turn and joined in order, and the reply being written as a hollow
point that moves while it streams. Hover text gives names and coordinates.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 440, 300, 18
LABELLED = ("persona", "role_model")  # kinds whose names are written on the map
MARK_COLOURS = {"turn": "#d9480f", "live": "#d9480f", "A": "#1971c2", "B": "#e8590c"}


@dataclass(frozen=True)
class Character:
    id: str
    kind: str
    x: float
    y: float

    @property
    def name(self) -> str:
        return self.id.split(":", 1)[1] if ":" in self.id else self.id


@dataclass(frozen=True)
class MapPoint:
    """A reply on the map: ``kind`` 'turn' (a finished reply of the conversation), 'live' (being written), or a
    side of the Compare tab ('A', 'B')."""

    label: str
    x: float
    y: float
    kind: str = "turn"
    nearest: tuple[str, ...] = ()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _frame(xs: Sequence[float], ys: Sequence[float]):  # noqa: ANN202 - a small local projection
    lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = max(hi_x - lo_x, 1e-6), max(hi_y - lo_y, 1e-6)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (PAD + (x - lo_x) / span_x * (WIDTH - 2 * PAD), PAD + (hi_y - y) / span_y * (HEIGHT - 2 * PAD))

    return to_px


CHAR_PX = 6.3  # width of one label character at the map's 10 px type (an estimate for placing labels)


def _label_box(x: float, y: float, width: float, taken: list[tuple[float, float, float, float]]):  # noqa: ANN202
    """Where a dot's label goes: beside it (right, or left on the right third), else above or below it, at the
    first place that does not overlap a label already written; (left, baseline) of the text."""
    right, left = (x + 7, y + 3.5), (x - 7 - width, y + 3.5)
    places = [left, right] if x > WIDTH * 0.68 else [right, left]
    places += [(x - width / 2, y - 7), (x - width / 2, y + 14)]
    for lx, base in places:
        box = (lx, base - 9, lx + width, base + 2)
        apart = all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken)
        if apart and lx >= 0 and lx + width <= WIDTH:
            taken.append(box)
            return lx, base
    return places[0]


def _background(characters: Sequence[Character], selected: Collection[str], to_px) -> list[str]:  # noqa: ANN001
    parts, taken = [], []
    for c in characters:
        x, y = to_px(c.x, c.y)
        labelled = c.kind in LABELLED
        cls = "sel" if c.id in selected else "named" if labelled else "char"
        parts.append(f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="{4.5 if labelled else 2.4}">'
                     f"<title>{_e(c.name)} ({_e(c.kind)}): {c.x:+.2f}, {c.y:+.2f}</title></circle>")  # fmt: skip
        if labelled:
            lx, base = _label_box(x, y, CHAR_PX * len(c.name), taken)
            parts.append(f'<text class="{cls}" x="{lx:.1f}" y="{base:.1f}">{_e(c.name)}</text>')
    return parts


def _marks(points: Sequence[MapPoint], to_px) -> list[str]:  # noqa: ANN001
    parts = []
    path = [to_px(p.x, p.y) for p in points if p.kind in ("turn", "live")]
    if len(path) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in path)
        parts.append(f'<polyline class="trail" points="{line}"/>')
    for p in points:
        x, y = to_px(p.x, p.y)
        colour = MARK_COLOURS.get(p.kind, MARK_COLOURS["turn"])
        near = f" — nearest: {', '.join(p.nearest)}" if p.nearest else ""
        title = f"<title>{_e(p.label)}: {p.x:+.2f}, {p.y:+.2f}{_e(near)}</title>"
        fill = "none" if p.kind == "live" else colour
        parts.append(f'<circle class="mark {p.kind}" cx="{x:.1f}" cy="{y:.1f}" r="8" fill="{fill}" '
                     f'stroke="{colour}">{title}</circle>')  # fmt: skip
        text_class = "mark-label live" if p.kind == "live" else "mark-label"
        parts.append(f'<text class="{text_class}" x="{x:.1f}" y="{y + 3.5:.1f}" text-anchor="middle">'
                     f"{_e(p.label)}</text>")  # fmt: skip
    return parts


def persona_map_svg_html(
    characters: Sequence[Character],
    points: Sequence[MapPoint] = (),
    *,
    selected: Collection[str] = (),
    caption: str = "",
    empty: str = "",
) -> str:
    """The map with ``points`` on it; ``selected``: the ids of the chat's personas in the space, ringed
    ('persona:pirate'). ``empty`` is shown instead when the model has no persona space."""
    if not characters:
        return f'<div class="pp-panel"><div class="pp-empty">{_e(empty)}</div></div>'
    xs = [c.x for c in characters] + [p.x for p in points]
    ys = [c.y for c in characters] + [p.y for p in points]
    to_px = _frame(xs, ys)
    body = "".join(_background(characters, selected, to_px) + _marks(points, to_px))
    svg = (f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="persona map: characters of the model '
           f'and the replies of this conversation">{body}</svg>')  # fmt: skip
    note = f'<div class="pp-map-caption">{_e(caption)}</div>' if caption else ""
    return f'<div class="pp-panel"><div class="pp-map">{svg}</div>{note}</div>'

"""The persona map's data for a conversation (Chat tab) or a pair of replies (Compare tab), drawn by
``persona_map_plot``: where each reply sits in the model's persona space, live while a reply streams."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from .live_reply import LiveReply
from .persona_map_plot import Character, MapPoint, persona_map_svg_html

if TYPE_CHECKING:
    from ..chat.session import Playground
    from .chat_state import ChatState

NO_SPACE = (
    "No persona map for this model yet: `python -m playground persona-space --ship` measures its characters "
    "(about 2.5 minutes on 2 cores)."
)
KEY = (
    "Dots: the characters the model was measured playing (labelled: the shipped personas and role models; "
    "ringed: this chat's persona). Numbers: this conversation's replies, in order; hollow: the reply being written."
)


COMPARE_KEY = (
    "Dots: the characters the model was measured playing (labelled: the shipped personas and role models; "
    "ringed: the personas of A and B). A and B: the two answers; hollow while written."
)


def characters(pg: Playground) -> list[Character]:
    space = pg.persona_space
    if space is None:
        return []
    rows = zip(space.ids, space.kinds, space.coords, strict=True)
    return [Character(i, k, float(c[0]), float(c[1])) for i, k, c in rows]


def reply_point(reply: LiveReply, label: str, kind: str = "turn") -> MapPoint | None:
    """A reply's point: its final placement when done, the running one while it streams."""
    placed: dict[str, Any] | None = (reply.result or {}).get("persona_map")
    if placed:
        return MapPoint(label, float(placed["x"]), float(placed["y"]), kind, tuple(placed.get("nearest", ())))
    if reply.point is not None:
        return MapPoint(label, reply.point[0], reply.point[1], "live" if not reply.result else kind)
    return None


def _caption(points: Sequence[MapPoint]) -> str:
    if not points:
        return "Each reply appears here as a numbered point, moving while it is written. " + KEY
    last = points[-1]
    where = f"Reply {last.label} so far" if last.kind == "live" else f"Reply {last.label}"
    near = f" is nearest to {', '.join(n.split(':', 1)[-1] for n in last.nearest)}." if last.nearest else "."
    return where + near + " " + KEY


def chat_map_html(state: ChatState | None) -> str:
    """The Chat tab's map: every reply of the conversation as a point, joined in order (the last one live)."""
    if state is None:
        return ""
    chars = characters(state.pg)
    points = [p for i, rec in enumerate(state.turns) if (p := reply_point(rec.reply, str(i + 1))) is not None]
    heading = '<div class="pp-head"><span>Persona map: where each reply sits among the characters</span></div>'
    return heading + persona_map_svg_html(
        chars, points, selected={f"persona:{state.persona_id}"}, caption=_caption(points), empty=NO_SPACE
    )


def compare_map_html(
    pg: Playground, sides: Sequence[tuple[str, LiveReply | None]], selected: Collection[str] = ()
) -> str:
    """The Compare tab's map: the two replies as points A and B."""
    points = [p for label, reply in sides if reply is not None and (p := reply_point(reply, label, label)) is not None]
    near = [f"{p.label}: {', '.join(n.split(':', 1)[-1] for n in p.nearest)}" for p in points if p.nearest]
    caption = ("Nearest characters — " + "; ".join(near) + ". ") if near else ""
    chars = characters(pg)
    return persona_map_svg_html(chars, points, selected=selected, caption=caption + COMPARE_KEY, empty=NO_SPACE)

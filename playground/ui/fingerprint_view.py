"""The editor's fingerprint panel (no Gradio imports): a persona's measured profile after a save, next to the
version saved before it: every probe's mean with the change, and both versions on the persona map."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from ..chat.fingerprint import REPLY_TOKENS, Fingerprint
from .map_view import characters
from .persona_map_plot import MapPoint, persona_map_svg_html

if TYPE_CHECKING:
    from ..chat.session import Playground

WAITING = (
    "Save to measure this persona's fingerprint: every probe over its replies to {n} everyday questions, and "
    "its place on the persona map. The next save shows what the edit changed."
)
NOTABLE = 0.3  # a change of at least this many z is drawn bold


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(fp: Fingerprint) -> str:
    return time.strftime("%H:%M:%S", time.localtime(fp.measured_at))


def _table(now: Fingerprint, before: Fingerprint | None) -> str:
    head = "<tr><th>probe</th>" + ("<th>before</th>" if before else "") + "<th>now</th>"
    head += "<th>change</th></tr>" if before else "</tr>"
    rows = []
    def change(item: tuple[str, float]) -> float:
        trait, value = item
        return -abs(value - before.probes.get(trait, value)) if before is not None else -abs(value)

    for trait, value in sorted(now.probes.items(), key=change):
        cells = f"<td>{_e(trait)}</td>"
        if before is not None:
            old = before.probes.get(trait)
            cells += f'<td class="num">{old:+.2f}</td>' if old is not None else '<td class="num">–</td>'
        cells += f'<td class="num">{value:+.2f}</td>'
        if before is not None and trait in before.probes:
            delta = value - before.probes[trait]
            arrow = "▲" if delta > 0 else "▼" if delta < 0 else "·"
            weight = ' style="font-weight:700"' if abs(delta) >= NOTABLE else ""
            cells += f'<td class="num"{weight}>{arrow} {delta:+.2f}</td>'
        elif before is not None:
            cells += "<td></td>"
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="pp-table">{head}{"".join(rows)}</table>'


def _map(pg: Playground, now: Fingerprint, before: Fingerprint | None) -> str:
    marks = []
    for label, fp in (("1", before), ("2", now)):
        if fp is not None and fp.map:
            marks.append(MapPoint(label, float(fp.map["x"]), float(fp.map["y"]), "turn", tuple(fp.map["nearest"])))
    near = ", ".join(n.split(":", 1)[-1] for n in (now.map or {}).get("nearest", []))
    caption = (f"2 = this save, nearest to {near}; 1 = the save before." if before else f"Nearest to {near}.")
    return persona_map_svg_html(characters(pg), marks, selected={f"persona:{now.persona}"}, caption=caption, empty="")


def fingerprint_html(pg: Playground, now: Fingerprint, before: Fingerprint | None) -> str:
    """The panel after a save (``before``: the fingerprint recorded at the previous save, if any)."""
    title = f"Fingerprint of <b>{_e(now.persona)}</b>: {now.questions} questions, {REPLY_TOKENS} tokens each, greedy"
    if before is None:
        sub = "First measurement of this persona: the next save shows what an edit changes."
    elif before.digest == now.digest:
        sub = f"Prompt, steering and sampling unchanged since the save at {_when(before)}: the same numbers."
    else:
        sub = f"This save ({_when(now)}) vs the save before ({_when(before)}). Units: z, as in the probe bars."
    body = f'<div class="pp-head"><span>{title}</span></div><div class="pp-note">{_e(sub)}</div>'
    body += _table(now, before) if now.probes else '<div class="pp-empty">This model has no trait probes.</div>'
    panel = f'<div class="pp-panel">{body}</div>'
    return panel + (_map(pg, now, before) if now.map else "")


def waiting_html(questions: int) -> str:
    return f'<div class="pp-panel"><div class="pp-empty">{_e(WAITING.format(n=questions))}</div></div>'


def measuring_html(persona: str) -> str:
    return f'<div class="pp-panel"><div class="pp-empty">📏 Measuring the fingerprint of {_e(persona)}…</div></div>'

"""The persona picker: choosing a persona starts a new conversation with it, and the page's load event sets
the tab up. A persona that can't be used leaves the current chat as it was and says why."""

from __future__ import annotations

import gradio as gr

from ...errors import PlaygroundError
from ..chat_state import ChatState
from ..views import describe_error, error_md, full_view
from . import turn_tools
from .parts import ChatParts, PersonaPicker


def render(choices: list[tuple[str, str]], start: str) -> PersonaPicker:
    dropdown = gr.Dropdown(choices=choices, value=start, label="Persona", elem_id="persona-select")
    return PersonaPicker(dropdown, gr.Markdown(elem_id="persona-info"))


def select(p: ChatParts, persona_id: str, trait: str, st: ChatState | None) -> tuple:
    """Values for ``p.select_outs``: a new ChatState for the persona, or the current one with the reason."""
    try:
        new = ChatState(p.pg, persona_id)
    except PlaygroundError as exc:
        current = st.persona_id if st is not None else None
        note = error_md(
            f"Persona '{persona_id}' can't be used: {describe_error(exc)}\n"
            "Fix it in the Persona editor tab; the current chat is unchanged."
        )
        view = full_view(st, trait, note)
        return (st, gr.update(value=current), *view, *p.persona_view(st))
    return (new, gr.update(), *full_view(new, trait), *p.persona_view(new))


def listen(p: ChatParts) -> None:
    def select_persona(persona_id: str, trait: str, st: ChatState | None):
        return select(p, persona_id, trait, st)

    selected = p.persona.dropdown.input(
        select_persona,
        [p.persona.dropdown, p.probes.heat_trait, p.state],
        p.select_outs,
        api_name="select_persona",
        api_visibility="undocumented",
    )
    turn_tools.refresh_after(p, selected)


def on_load(p: ChatParts) -> tuple:
    """(fn, inputs, outputs) for the page's load event."""

    def load_page(persona_id: str, trait: str, st: ChatState | None):
        """The page's load event: the chat state and views; the sliders only if the persona changed on disk
        since the page was built (otherwise they already hold its values and the user may have moved one)."""
        out = list(select(p, persona_id, trait, st))
        n = len(p.initial)
        if out[len(out) - n :] == p.initial:
            out[len(out) - n :] = [gr.skip()] * n
        return tuple(out)

    return (load_page, [p.persona.dropdown, p.probes.heat_trait, p.state], p.select_outs)

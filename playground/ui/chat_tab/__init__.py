"""The Chat tab: persona picker, streaming chat with stop / regenerate / undo / clear / export / import, the
steering sliders, and the probe panel beside the reply (bars, heatmap, trend, guardrail alerts, log, policy).

One module per part of the page, each with ``render()`` (create its components, in page order) and
``listen(parts)`` (wire its events); ``build_chat_tab`` only lays them out and composes them. Handlers adapt
``playground.ui.chat_state.ChatState``; what is shown comes from ``playground.ui.views`` and ``plots``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ...chat.session import Playground
from ..editor_tab import ChatLink
from ..views import persona_controls
from . import conversation, demo, guard, history, persona, probes, steering, turn_tools
from .parts import ChatParts


@dataclass
class ChatTab:
    link: ChatLink  # for the editor's "try in chat" and picker refresh
    on_load: tuple[Any, list[Any], list[Any]]  # (fn, inputs, outputs) for the page's load event


def build_chat_tab(
    pg: Playground,
    choices: list[tuple[str, str]],
    start: str,
    traits: list[str],
    heat_default: str | None,
    badge_md: gr.Markdown,
    tabs: gr.Tabs,
) -> ChatTab:
    """Create the Chat components and handlers in the current Gradio context."""
    # The page is built with the start persona's slider values, so nothing needs changing when it loads.
    initial = persona_controls(pg, start, traits)
    state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=5):
            picker = persona.render(choices, start)
            convo = conversation.render()
            steer = steering.render(traits, initial)
        with gr.Column(scale=4, elem_id="probe-panel"):
            talk = demo.render(pg, traits)  # beside the chat: the left column keeps the message box in view
            panel = probes.render(traits, heat_default)
            guard_panel = guard.render()
    parts = ChatParts(pg, traits, start, initial, state, badge_md, picker, convo, steer, panel, guard_panel)
    # the order the events are registered
    for part in (persona, conversation, turn_tools, probes, steering, history, guard):
        part.listen(parts)
    demo.listen(parts, talk)
    link = ChatLink(
        state, picker.dropdown, panel.heat_trait, tabs, parts.select_outs, parts.view,
        lambda event: turn_tools.refresh_after(parts, event),
    )  # fmt: skip
    return ChatTab(link, persona.on_load(parts))

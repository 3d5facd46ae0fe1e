"""The Chat tab's components, grouped the way the page is: each part module (``persona``, ``conversation``,
``steering``, ``probes``, ``guard``) renders one group and returns it as a dataclass; ``ChatParts`` gathers
them (with the tab's state and what every handler needs) and is passed to each part's ``listen``. Nothing
here is global: every ``build_ui`` gets parts of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ...chat.session import Playground
from ..chat_state import ChatState
from ..views import full_view, persona_view


@dataclass
class PersonaPicker:
    dropdown: gr.Dropdown
    info: gr.Markdown


@dataclass
class TurnTools:
    """The row under the chat: ← / → through the alternative replies to the last message with their counter,
    Continue for a reply cut at the token limit, and the context meter."""

    prev: gr.Button
    count: gr.Button  # not clickable: "reply 2/3"
    next: gr.Button
    cont: gr.Button
    meter: gr.HTML

    @property
    def outs(self) -> list[Any]:
        return [self.prev, self.count, self.next, self.cont, self.meter]


@dataclass
class Conversation:
    """The chat itself: messages, the message box and the buttons under it, the export file and the status."""

    chatbot: gr.Chatbot
    box: gr.Textbox
    send: gr.Button
    stop: gr.Button
    regen: gr.Button
    undo: gr.Button
    clear: gr.Button
    export_btn: gr.Button
    import_btn: gr.UploadButton
    export_file: gr.File
    status: gr.Markdown
    tools: TurnTools


@dataclass
class SteeringControls:
    """Steering sliders (one per trait) and sampling, applied to the next reply."""

    sliders: list[gr.Slider]
    reset: gr.Button
    temperature: gr.Slider
    max_tokens: gr.Slider
    seed: gr.Number

    @property
    def values(self) -> list[Any]:
        """The inputs a reply is generated with, after the message and heatmap trait."""
        return [self.temperature, self.max_tokens, self.seed, *self.sliders]


@dataclass
class ProbePanel:
    bars: gr.HTML
    alerts: gr.HTML
    heat_trait: gr.Dropdown
    heat: gr.HTML
    trend: gr.HTML


@dataclass
class GuardPanel:
    policy_view: gr.HTML
    reload_policy: gr.Button
    policy_status: gr.Markdown
    log_view: gr.HTML


@dataclass
class ChatParts:
    """Everything the Chat tab's handlers work with."""

    pg: Playground
    traits: list[str]
    start: str  # the persona the page is built with
    initial: list[float]  # its slider values (steering per trait, temperature, max tokens)
    state: gr.State  # the tab's ChatState (None until the page loads or a message comes first)
    badge: gr.Markdown
    persona: PersonaPicker
    convo: Conversation
    steering: SteeringControls
    probes: ProbePanel
    guard: GuardPanel

    @property
    def panel_outs(self) -> list[Any]:
        return [self.probes.bars, self.probes.alerts, self.probes.heat, self.probes.trend, self.guard.log_view]

    @property
    def stream_outs(self) -> list[Any]:
        """The components a reply's updates fill (``streaming.reply_updates``)."""
        return [self.convo.chatbot, self.convo.box, self.convo.status, *self.panel_outs]

    @property
    def chat_outs(self) -> list[Any]:
        """The components ``views.full_view`` fills."""
        return [self.convo.chatbot, self.convo.status, *self.panel_outs]

    @property
    def persona_outs(self) -> list[Any]:
        """The components ``views.persona_view`` fills."""
        s = self.steering
        return [self.badge, self.persona.info, self.guard.policy_view, *s.sliders, s.temperature, s.max_tokens]

    @property
    def select_outs(self) -> list[Any]:
        """What changes when the tab gets another ChatState: the state, the picker and every view."""
        return [self.state, self.persona.dropdown, *self.chat_outs, *self.persona_outs]

    def persona_view(self, st: ChatState | None) -> tuple:
        return persona_view(self.pg, st, self.traits)

    def view(self, st: ChatState | None, trait: str | None, note: str = "") -> tuple:
        """The values for ``select_outs[2:]``."""
        return (*full_view(st, trait, note), *self.persona_view(st))

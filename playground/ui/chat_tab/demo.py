"""Demo for a talk: the steps of ``personas/demo/talk.yml`` (``playground.definitions.demo_script``) in a
dropdown with "Set up" and "Next step ▶". A step starts a fresh conversation with its persona, sets the steering
sliders, temperature, max tokens and its fixed seed, and puts its message in the box: the speaker presses Enter
and gets the same reply as at every rehearsal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ...chat.session import Playground
from ...definitions.demo_script import DemoScript, load_demo
from ...errors import PlaygroundError
from ..chat_state import ChatState
from ..views import describe_error, error_md
from . import persona, turn_tools
from .parts import ChatParts


@dataclass
class DemoControls:
    script: DemoScript | None
    step: gr.Dropdown
    apply: gr.Button
    next: gr.Button
    note: gr.Markdown


def _load(pg: Playground, traits: list[str]) -> tuple[DemoScript | None, str]:
    try:
        return load_demo(personas=list(pg.catalog.persona_files()), traits=traits), ""
    except PlaygroundError as exc:
        return None, error_md(f"The demo script can't be used: {describe_error(exc)}")


def render(pg: Playground, traits: list[str]) -> DemoControls:
    script, problem = _load(pg, traits)
    with gr.Accordion("Demo for a talk", open=False, elem_id="demo"):
        gr.Markdown(
            "Prepared steps with fixed seeds: each sets the persona, steering and seed and puts its message in the "
            "box; press **Enter** to send. The same step gives the same reply every time.",
            elem_classes=["pp-keys"],
        )
        with gr.Row():
            choices = script.choices() if script else []
            step = gr.Dropdown(
                choices=choices, value=None, label="Step (Next starts at 1)", scale=4, elem_id="demo-step"
            )
            apply = gr.Button("Set up", scale=1, elem_id="demo-apply", interactive=bool(script))
            nxt = gr.Button("Next step ▶", variant="primary", scale=1, elem_id="demo-next", interactive=bool(script))
        note = gr.Markdown(problem, elem_id="demo-note")
    return DemoControls(script, step, apply, nxt, note)


def set_up(p: ChatParts, script: DemoScript, index: int | None, trait: str, st: ChatState | None) -> tuple:
    """Values for [*p.select_outs, seed, message box, step dropdown, note]: a fresh chat with the step's persona,
    its controls and its message."""
    step = script.step(index)
    out = list(persona.select(p, step.persona, trait, st))
    controls = step.controls(p.traits)
    if out[0] is not st:  # the persona could be used: the picker shows it, with the step's controls
        out[1] = gr.update(value=step.persona)
        out[len(out) - len(controls) :] = controls
    i = script.steps.index(step)
    note = f"**Step {i + 1} of {len(script.steps)}: {step.title}** — {step.describe()}" + (
        f"\n\n*Say:* {step.say}" if step.say else ""
    )
    return (*out, step.seed, step.message, i, note)


def listen(p: ChatParts, d: DemoControls) -> None:
    if d.script is None:
        return
    script = d.script
    ins = [d.step, p.probes.heat_trait, p.state]
    outs: list[Any] = [*p.select_outs, p.steering.seed, p.convo.box, d.step, d.note]

    def apply(index: int | None, trait: str, st: ChatState | None):
        return set_up(p, script, index, trait, st)

    def advance(index: int | None, trait: str, st: ChatState | None):
        return set_up(p, script, script.next_index(index), trait, st)

    for event in (d.apply.click, d.step.input):
        turn_tools.refresh_after(p, event(apply, ins, outs, api_visibility="private"))  # a fresh chat: no old tools
    turn_tools.refresh_after(p, d.next.click(advance, ins, outs, api_visibility="private"))

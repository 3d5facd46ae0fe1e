"""Steering and sampling for the next reply: one slider per trait (preloaded with the persona's own
``steering:``), a reset to the persona's values, the steering guide (docs/STEERING.md), and temperature, max
tokens and seed."""

from __future__ import annotations

import gradio as gr

from ...paths import REPO_ROOT
from ..chat_state import ChatState
from ..views import controls
from .parts import ChatParts, SteeringControls

STEERING_DOC = REPO_ROOT / "docs" / "STEERING.md"
SCALE = (
    "Strength is unitless, **−2…2**: **0 = off** (bit-for-bit the unsteered reply), "
    "**1 = the strongest dose that stays coherent** (measured per trait), negative "
    "pushes away from the trait, above 1 the text falls apart on small models. "
    "The persona's own `steering:` is preloaded. Details: *How steering works* below "
    "(docs/STEERING.md)."
)


def render(traits: list[str], initial: list[float]) -> SteeringControls:
    """The sliders start at ``initial`` (the start persona's values), so the page's load event need not set them:
    a value set then could arrive after the user moved a slider (a start-up race seen in the browser)."""
    steering_doc = STEERING_DOC.read_text(encoding="utf-8") if STEERING_DOC.exists() else ""
    with gr.Accordion("Steering — applies to the next reply", open=True, elem_id="steering"):
        gr.Markdown(SCALE)
        with gr.Row():
            sliders = [
                gr.Slider(-2, 2, value=v, step=0.1, label=t, elem_id=f"steer-{t}", min_width=180)
                for t, v in zip(traits, initial[:-2], strict=True)
            ]
        reset = gr.Button("Reset to the persona's defaults", size="sm", elem_id="steer-reset")
        with gr.Accordion("How steering works (docs/STEERING.md)", open=False):
            gr.Markdown(steering_doc or "docs/STEERING.md is missing from this installation.")
    with gr.Accordion("Sampling", open=False, elem_id="sampling"):
        with gr.Row():
            temperature = gr.Slider(
                0, 1.5, value=initial[-2], step=0.05, label="Temperature (0 = greedy)", elem_id="temperature"
            )
            max_tokens = gr.Slider(8, 512, value=initial[-1], step=8, label="Max tokens", elem_id="max-tokens")
            seed = gr.Number(value=-1, precision=0, label="Seed (−1 = random)", elem_id="seed")
    return SteeringControls(sliders, reset, temperature, max_tokens, seed)


def listen(p: ChatParts) -> None:
    def reset_steering(st: ChatState | None):
        return controls(st.persona if st is not None else None, p.traits)[: len(p.traits)]

    p.steering.reset.click(reset_steering, p.state, p.steering.sliders, api_visibility="private")

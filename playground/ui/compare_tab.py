"""The Compare tab: one message answered side by side by two configurations (persona A vs B, or steered vs
unsteered), each with its probe panel. Components and thin handlers over ``ChatState``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from ..chat.session import Playground
from ..errors import PlaygroundError
from . import plots
from .chat_state import ChatState
from .views import NONE_TRAIT, UPDATE_INTERVAL_S, describe_error, error_md, reply_panels, single_exchange

SIDES = ("a", "b")
INTRO = (
    "The same message, answered by two configurations side by side: persona A vs B, or steered vs "
    "unsteered. Each answer starts a fresh conversation, with the same sampling for both."
)


def build_compare_tab(
    pg: Playground, choices: list[tuple[str, str]], start: str, traits: list[str], heat_default: str | None
) -> dict[str, Any]:
    """Create the Compare components in the current Gradio context; returns them by name."""
    cmp_state = gr.State(None)
    gr.Markdown(INTRO)
    cmp_sides = _render_configs(choices, start, traits, heat_default)
    with gr.Row():
        cmp_msg = gr.Textbox(
            placeholder="One message for both — Enter sends", show_label=False, scale=5, elem_id="cmp-msg"
        )
        cmp_go = gr.Button("Answer with both", variant="primary", scale=1, elem_id="cmp-go")
    with gr.Row():
        cmp_greedy = gr.Checkbox(value=True, label="Greedy (temperature 0): differences come from the config")
        cmp_max = gr.Slider(16, 256, value=96, step=8, label="Max tokens")
        cmp_trait = gr.Dropdown(choices=traits, value=heat_default, label="Heatmap of")
    cmp_status = gr.Markdown()
    cmp_out = _render_outputs()

    def compare(message: str, greedy: bool, max_tok: float, trait: str, *config):
        yield from compare_updates(pg, message, greedy, max_tok, trait, config)

    cmp_ins = [cmp_msg, cmp_greedy, cmp_max, cmp_trait, *cmp_sides["a"], *cmp_sides["b"]]
    cmp_outs = [cmp_state, *cmp_out["a"], *cmp_out["b"], cmp_status]
    for trigger in (cmp_msg.submit, cmp_go.click):
        trigger(compare, cmp_ins, cmp_outs, show_progress="hidden", api_visibility="private", concurrency_id="generate")

    def cmp_redraw(sides: dict | None, trait: str):
        out = []
        for key in SIDES:
            if not sides or key not in sides:
                out += [gr.skip(), gr.skip()]
                continue
            cst = sides[key][0]
            b, _, h = reply_panels(cst, cst.last.reply if cst.last else None, trait)
            out += [b, h]
        return out

    panels = [cmp_out["a"][2], cmp_out["a"][3], cmp_out["b"][2], cmp_out["b"][3]]
    cmp_trait.change(cmp_redraw, [cmp_state, cmp_trait], panels, api_visibility="private")
    return {"state": cmp_state, "message": cmp_msg, "go": cmp_go, "status": cmp_status, "sides": cmp_sides}


def _render_configs(
    choices: list[tuple[str, str]], start: str, traits: list[str], heat_default: str | None
) -> dict[str, tuple[gr.Dropdown, gr.Dropdown, gr.Slider]]:
    """Per side: (persona, steer trait, strength). A starts unsteered, B steered at 1 toward the heatmap trait."""
    sides = {}
    with gr.Row():
        for side, trait_default, strength_default in (("a", NONE_TRAIT, 0.0), ("b", heat_default, 1.0)):
            with gr.Column():
                gr.Markdown(f"#### Configuration {side.upper()}")
                with gr.Row():
                    persona = gr.Dropdown(choices=choices, value=start, label="Persona", elem_id=f"cmp-{side}-persona")
                    trait = gr.Dropdown(
                        choices=[NONE_TRAIT, *traits],
                        value=trait_default or NONE_TRAIT,
                        label="Steer trait",
                        elem_id=f"cmp-{side}-trait",
                    )
                    strength = gr.Slider(
                        -2, 2, value=strength_default, step=0.1, label="Strength", elem_id=f"cmp-{side}-strength"
                    )
                sides[side] = (persona, trait, strength)
    return sides


def _render_outputs() -> dict[str, tuple[gr.Markdown, gr.Chatbot, gr.HTML, gr.HTML]]:
    """Per side: (title, chat, probe bars, heatmap)."""
    out = {}
    with gr.Row():
        for side in SIDES:
            with gr.Column():
                title = gr.Markdown(f"**{side.upper()}**")
                chat = gr.Chatbot(
                    show_label=False,
                    min_height=160,
                    max_height=380,
                    height=None,
                    autoscroll=False,
                    elem_id=f"cmp-{side}-chat",
                )
                bars = gr.HTML(plots.probe_bars_html({}), elem_id=f"cmp-{side}-bars")
                heat = gr.HTML(plots.token_heatmap_html([], [], ""), elem_id=f"cmp-{side}-heat")
                out[side] = (title, chat, bars, heat)
    return out


def compare_updates(
    pg: Playground, message: str, greedy: bool, max_tok: float, trait: str, config: tuple
) -> Iterator[tuple]:
    """Updates for [state, A's title/chat/bars/heatmap, B's, status]: A answers, then B, each streamed."""
    (pa, ta, sa, pb, tb, sb) = config
    empty = (gr.skip(),) * 8
    if not (message or "").strip():
        yield (None, *empty, "Type a message to compare.")
        return
    sides = {}
    for key, pid, t, s in (("a", pa, ta, sa), ("b", pb, tb, sb)):
        try:
            sides[key] = (ChatState(pg, pid), {t: float(s)} if t and t != NONE_TRAIT and s else {})
        except PlaygroundError as exc:
            yield (None, *empty, error_md(f"Configuration {key.upper()}: {describe_error(exc)}"))
            return
    options = {"temperature": 0.0 if greedy else None, "max_tokens": int(max_tok), "seed": 1234}
    views: dict[str, tuple] = {}
    for key, (cst, steer) in sides.items():
        label = f"**{key.upper()}: {cst.persona.name}**" + (
            " · steering " + ", ".join(f"{k} {v:+g}" for k, v in steer.items()) if steer else " · unsteered"
        )
        views[key] = (label, [], *reply_panels(None, None, trait)[::2])

    def pack(note: str):
        return (sides, *[value for k in sides for value in views[k]], note)

    for key, (cst, steer) in sides.items():
        try:
            for live in cst.stream(message, steer, min_interval=UPDATE_INTERVAL_S, **options):
                b, _, h = reply_panels(cst, live, trait)
                views[key] = (views[key][0], single_exchange(cst), b, h)
                yield pack(f"✎ {key.upper()} is answering…")
        except PlaygroundError as exc:
            yield pack(error_md(describe_error(exc)))
            return
    yield pack("✓ Both answered. Same message, same sampling; only the configuration differs.")

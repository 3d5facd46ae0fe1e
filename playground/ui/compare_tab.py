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
from .live_reply import LiveReply
from .map_view import compare_map_html
from .probe_scale import PanelScale, shared_scale
from .views import (
    NONE_TRAIT,
    UPDATE_INTERVAL_S,
    describe_error,
    error_md,
    panel_values,
    reply_panels,
    single_exchange,
)

SIDES = ("a", "b")
INTRO = (
    "The same message, answered by two configurations side by side: persona A vs B, or steered vs "
    "unsteered. Each answer starts a fresh conversation, with the same sampling for both. Both sides' bars and "
    "heatmaps are drawn on **one shared scale** (fitted to the larger of the two replies), so lengths and colours "
    "compare by eye."
)
SCALE_WAITING = "Both sides are drawn on one shared scale once they answer."
UNSTEERED = "Strength: **none** (unsteered)"


def strength_controls(trait: str | None, strength: float) -> tuple[dict, dict]:
    """Updates for a side's (strength slider, "unsteered" note) when its steer trait is ``trait``: no trait hides
    the slider and says unsteered; a trait shows it, at 1 if it stood at 0 (0 would steer nothing)."""
    steered = bool(trait) and trait != NONE_TRAIT
    value = strength if not steered or strength else 1.0
    return gr.update(visible=steered, value=value), gr.update(visible=not steered)


def scale_note(scale: PanelScale) -> str:
    return f"**One scale for both sides:** {scale.describe()} (the larger of the two replies)."


def side_panels(
    sides: dict[str, tuple[ChatState, dict]], lives: dict[str, LiveReply | None], trait: str
) -> tuple[PanelScale, dict[str, tuple[str, str]]]:
    """Every side's (bars, heatmap), all on the one scale that fits every side's reply."""
    scale = shared_scale(panel_values(sides[k][0], lives.get(k), trait) for k in sides)
    panels = {k: reply_panels(sides[k][0], lives.get(k), trait, scale=scale)[::2] for k in sides}
    return scale, panels


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
        cmp_max = gr.Slider(16, 256, value=96, step=8, label="Max tokens", elem_id="cmp-max")
        cmp_trait = gr.Dropdown(choices=traits, value=heat_default, label="Heatmap of", elem_id="cmp-heat-trait")
    cmp_status = gr.Markdown(elem_id="cmp-status")
    cmp_scale = gr.Markdown(SCALE_WAITING, elem_id="cmp-scale")
    cmp_out = _render_outputs()
    gr.Markdown("#### Persona map: where each answer sits among the model's characters")
    cmp_map = gr.HTML(compare_map_html(pg, []), elem_id="cmp-map")

    def compare(message: str, greedy: bool, max_tok: float, trait: str, *config):
        yield from compare_updates(pg, message, greedy, max_tok, trait, config)

    cmp_ins = [cmp_msg, cmp_greedy, cmp_max, cmp_trait, *cmp_sides["a"], *cmp_sides["b"]]
    cmp_outs = [cmp_state, *cmp_out["a"], *cmp_out["b"], cmp_status, cmp_scale, cmp_map]
    for trigger in (cmp_msg.submit, cmp_go.click):
        trigger(compare, cmp_ins, cmp_outs, show_progress="hidden", api_visibility="private", concurrency_id="generate")

    def cmp_redraw(sides: dict | None, trait: str):
        if not sides or set(sides) != set(SIDES):
            return [gr.skip()] * 5
        scale, panels = side_panels(sides, {k: c.last.reply if c.last else None for k, (c, _) in sides.items()}, trait)
        return [*panels["a"], *panels["b"], scale_note(scale)]

    panels = [cmp_out["a"][2], cmp_out["a"][3], cmp_out["b"][2], cmp_out["b"][3], cmp_scale]
    cmp_trait.change(cmp_redraw, [cmp_state, cmp_trait], panels, api_visibility="private")
    return {"state": cmp_state, "message": cmp_msg, "go": cmp_go, "status": cmp_status, "sides": cmp_sides}


def _render_configs(
    choices: list[tuple[str, str]], start: str, traits: list[str], heat_default: str | None
) -> dict[str, tuple[gr.Dropdown, gr.Dropdown, gr.Slider]]:
    """Per side: (persona, steer trait, strength). A starts unsteered, B steered at 1 toward the heatmap trait;
    with no trait the strength slider gives way to "none (unsteered)"."""
    sides = {}
    with gr.Row():
        for side, trait_default in (("a", NONE_TRAIT), ("b", heat_default or NONE_TRAIT)):
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
                        -2,
                        2,
                        value=1.0,
                        step=0.1,
                        label="Strength",
                        elem_id=f"cmp-{side}-strength",
                        visible=trait_default != NONE_TRAIT,
                    )
                    none = gr.Markdown(UNSTEERED, visible=trait_default == NONE_TRAIT, elem_id=f"cmp-{side}-none")
                trait.change(strength_controls, [trait, strength], [strength, none], api_visibility="private")
                sides[side] = (persona, trait, strength)
    return sides


def _render_outputs() -> dict[str, tuple[gr.Markdown, gr.Chatbot, gr.HTML, gr.HTML]]:
    """Per side: (title, chat, probe bars, heatmap)."""
    out = {}
    with gr.Row():
        for side in SIDES:
            with gr.Column():
                title = gr.Markdown(f"**{side.upper()}**", elem_id=f"cmp-{side}-title")
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
    """Updates for [state, A's title/chat/bars/heatmap, B's, status, scale note, map]: A answers, then B, each
    streamed; both sides are redrawn on one shared scale with every update, and placed on the persona map."""
    (pa, ta, sa, pb, tb, sb) = config
    empty = (gr.skip(),) * 8
    if not (message or "").strip():
        yield (None, *empty, "Type a message to compare.", gr.skip(), gr.skip())
        return
    sides = {}
    for key, pid, t, s in (("a", pa, ta, sa), ("b", pb, tb, sb)):
        try:
            sides[key] = (ChatState(pg, pid), {t: float(s)} if t and t != NONE_TRAIT and s else {})
        except PlaygroundError as exc:
            yield (None, *empty, error_md(f"Configuration {key.upper()}: {describe_error(exc)}"), gr.skip(), gr.skip())
            return
    options = {"temperature": 0.0 if greedy else None, "max_tokens": int(max_tok), "seed": 1234}
    titles = {
        key: f"**{key.upper()}: {cst.persona.name}**"
        + (" · steering " + ", ".join(f"{k} {v:+g}" for k, v in steer.items()) if steer else " · unsteered")
        for key, (cst, steer) in sides.items()
    }
    lives: dict[str, LiveReply | None] = {key: None for key in sides}

    def pack(note: str):
        scale, panels = side_panels(sides, lives, trait)
        out: list = [sides]
        for key, (cst, _) in sides.items():
            out += [titles[key], single_exchange(cst) if lives[key] is not None else [], *panels[key]]
        ringed = {f"persona:{cst.persona_id}" for cst, _ in sides.values()}
        placed = compare_map_html(pg, [(k.upper(), lives[k]) for k in sides], ringed)
        return (*out, note, scale_note(scale), placed)

    for key, (cst, steer) in sides.items():
        try:
            for live in cst.stream(message, steer, min_interval=UPDATE_INTERVAL_S, **options):
                lives[key] = live
                yield pack(f"✎ {key.upper()} is answering…")
        except PlaygroundError as exc:
            yield pack(error_md(describe_error(exc)))
            return
    yield pack("✓ Both answered. Same message, same sampling; only the configuration differs.")

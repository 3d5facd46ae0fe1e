"""The Chat tab: persona picker, streaming chat with stop / regenerate / undo / clear / export / import, the
steering sliders, and the probe panel beside the reply (bars, heatmap, trend, guardrail alerts, log, policy).
Handlers adapt ``playground.ui.web.ChatState``; what is shown comes from ``ui_views`` and ``ui_plots``."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..chat.session import Playground
from ..definitions.personas import Persona
from ..errors import PlaygroundError
from ..paths import REPO_ROOT
from . import plots
from .editor_tab import ChatLink
from .views import (
    FIRST_WORDS_WAIT_S,
    PANEL_INTERVAL_S,
    UPDATE_INTERVAL_S,
    badge,
    chat_messages,
    error_md,
    persona_info,
    read_upload,
    reply_panels,
    status_line,
    trend_panel,
    turn_for_message,
)
from .web import ChatState, describe_error, parse_transcript

STEERING_DOC = REPO_ROOT / "docs" / "STEERING.md"
EXPORT_DIR = Path(tempfile.gettempdir()) / "persona-playground-exports"


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
    initial_choices = choices
    steering_doc = STEERING_DOC.read_text(encoding="utf-8") if STEERING_DOC.exists() else ""
    # The page is built with the start persona's slider values, so nothing needs changing when it loads: a value
    # set by the load event could arrive after the user moved a slider (a start-up race seen in the browser).
    initial = _persona_controls(pg, start, traits)
    state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=5):
            persona_dd = gr.Dropdown(choices=initial_choices, value=start, label="Persona", elem_id="persona-select")
            info_md = gr.Markdown(elem_id="persona-info")
            chatbot = gr.Chatbot(
                label="Chat",
                show_label=False,
                height=500,
                elem_id="chat",
                buttons=["copy", "copy_all"],
                layout="bubble",
            )
            with gr.Row():
                box = gr.Textbox(
                    placeholder="Type a message — Enter sends, Shift+Enter adds a line",
                    show_label=False,
                    lines=1,
                    max_lines=6,
                    scale=6,
                    elem_id="msg",
                    autofocus=True,
                )
                send = gr.Button("Send", variant="primary", scale=1, elem_id="send", min_width=90)
            with gr.Row():
                stop = gr.Button("■ Stop", size="sm", elem_id="stop", variant="stop")
                regen = gr.Button("↻ Regenerate", size="sm", elem_id="regen")
                undo = gr.Button("↩ Undo", size="sm", elem_id="undo")
                clear = gr.Button("⌫ Clear", size="sm", elem_id="clear")
                export_btn = gr.Button("⬇ Export chat", size="sm", elem_id="export")
                import_btn = gr.UploadButton(
                    "⬆ Import chat", size="sm", file_types=[".json"], type="filepath", elem_id="import"
                )
            gr.Markdown(
                "Keys: **Enter** send · **Shift+Enter** new line · **Esc** stop · **Alt+R** regenerate · "
                "**Alt+Z** undo · **Alt+L** clear · **Alt+D** dark/light · **/** back to the message box",
                elem_classes=["pp-keys"],
            )
            export_file = gr.File(label="Chat export (JSON)", visible=False, elem_id="export-file")
            status = gr.Markdown(elem_id="status-box")
            with gr.Accordion("Steering — applies to the next reply", open=True, elem_id="steering"):
                gr.Markdown(
                    "Strength is unitless, **−2…2**: **0 = off** (bit-for-bit the unsteered reply), "
                    "**1 = the strongest dose that stays coherent** (measured per trait), negative "
                    "pushes away from the trait, above 1 the text falls apart on small models. "
                    "The persona's own `steering:` is preloaded. Details: *How steering works* below "
                    "(docs/STEERING.md)."
                )
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
                        0,
                        1.5,
                        value=initial[-2],
                        step=0.05,
                        label="Temperature (0 = greedy)",
                        elem_id="temperature",
                    )
                    max_tokens = gr.Slider(
                        8, 512, value=initial[-1], step=8, label="Max tokens", elem_id="max-tokens"
                    )
                    seed = gr.Number(value=-1, precision=0, label="Seed (−1 = random)", elem_id="seed")
        with gr.Column(scale=4, elem_id="probe-panel"):
            gr.Markdown("### Trait probes — this reply")
            bars = gr.HTML(plots.probe_bars_html({}), elem_id="probe-bars")
            alerts = gr.HTML("", elem_id="guard-alerts")
            heat_trait = gr.Dropdown(
                choices=traits, value=heat_default, label="Per-token heatmap of", elem_id="heat-trait"
            )
            heat = gr.HTML(plots.token_heatmap_html([], [], ""), elem_id="probe-heatmap")
            gr.Markdown("### Across turns (mean per reply)")
            trend = gr.HTML(plots.trend_svg_html({}), elem_id="probe-trend")
            gr.Markdown(
                "Units: calibrated z — 0 = a typical assistant token, +1 = one standard deviation "
                "toward the trait. Click a reply in the chat to see its readouts.",
                elem_classes=["pp-keys"],
            )
            with gr.Accordion("Guardrails: policy in effect and session log", open=False, elem_id="guard-accordion"):
                policy_view = gr.HTML(elem_id="policy")
                reload_policy = gr.Button("Reload the policy file", size="sm", elem_id="policy-reload")
                policy_status = gr.Markdown()
                log_view = gr.HTML(plots.guard_log_html([]), elem_id="guard-log")

    # -- views and handlers: thin adapters over ChatState / ui_views / ui_plots
    panel_outs = [bars, alerts, heat, trend, log_view]
    chat_outs = [chatbot, status, *panel_outs]

    def full_view(st: ChatState | None, trait: str | None, note: str = "") -> tuple:
        live = st.last.reply if st is not None and st.last is not None else None
        b, a, h = reply_panels(st, live, trait)
        log = plots.guard_log_html(st.session.guard_log if st is not None else [])
        return (chat_messages(st), note or status_line(st, live), b, a, h, trend_panel(st, trait), log)

    def persona_view(st: ChatState | None) -> tuple:
        """Badge, info, policy table and slider/sampling values for a persona."""
        if st is None:
            return (badge(pg, None), "", plots.policy_html(None), *_controls(None, traits))
        return (
            badge(pg, st),
            persona_info(st),
            plots.policy_html(st.policy, st.persona.name),
            *_controls(st.persona, traits),
        )

    persona_outs = [badge_md, info_md, policy_view, *sliders, temperature, max_tokens]

    select_outs = [state, persona_dd, *chat_outs, *persona_outs]

    def select_persona(persona_id: str, trait: str, st: ChatState | None):
        try:
            new = ChatState(pg, persona_id)
        except PlaygroundError as exc:
            current = st.persona_id if st is not None else None
            note = error_md(
                f"Persona '{persona_id}' can't be used: {describe_error(exc)}\n"
                "Fix it in the Persona editor tab; the current chat is unchanged."
            )
            view = full_view(st, trait, note)
            return (st, gr.update(value=current), *view, *persona_view(st))
        return (new, gr.update(), *full_view(new, trait), *persona_view(new))

    def load_page(persona_id: str, trait: str, st: ChatState | None):
        """The page's load event: the chat state and views; the sliders only if the persona changed on disk
        since the page was built (otherwise they already hold its values and the user may have moved one)."""
        out = list(select_persona(persona_id, trait, st))
        controls = out[len(out) - len(initial) :]
        if controls == initial:
            out[len(out) - len(initial) :] = [gr.skip()] * len(initial)
        return tuple(out)

    persona_dd.input(
        select_persona,
        [persona_dd, heat_trait, state],
        select_outs,
        api_name="select_persona",
        api_visibility="undocumented",
    )

    def respond(st: ChatState | None, message: str, trait: str, temp: float, max_tok: float, seed_v, *steer):
        """The chat state (made here when the message beat the page's load event), then the reply's updates."""
        made: Any = gr.skip()
        if st is None:
            try:
                st = made = ChatState(pg, start)  # the picker still shows the start persona: nothing else was chosen
            except PlaygroundError as exc:
                note = error_md(f"Pick a valid persona first: {describe_error(exc)}")
                yield (gr.skip(), gr.skip(), message, note, *[gr.skip()] * 5)
                return
        for update in reply_updates(st, message, trait, temp, max_tok, seed_v, *steer):
            yield (made, *update)
            made = gr.skip()

    def reply_updates(st: ChatState, message: str, trait: str, temp: float, max_tok: float, seed_v, *steer):
        if st.busy:
            yield (gr.skip(), message, "⚠ Still answering — press Stop (Esc) first.", *[gr.skip()] * 5)
            return
        if not (message or "").strip():
            yield (gr.skip(), "", "", *[gr.skip()] * 5)
            return
        steering = {t: float(v) for t, v in zip(traits, steer, strict=True)}
        options = {
            "temperature": float(temp),
            "max_tokens": int(max_tok),
            "seed": int(seed_v) if seed_v is not None and seed_v >= 0 else None,
        }
        try:  # generation starts now
            updates = st.stream(
                message, steering, min_interval=UPDATE_INTERVAL_S, first_wait=FIRST_WORDS_WAIT_S, **options
            )
        except PlaygroundError as exc:
            yield (gr.skip(), message, error_md(describe_error(exc)), *[gr.skip()] * 5)
            return
        # What each update sends costs time on the way to the page (every output, gr.skip() too, is processed by
        # Gradio), so: the message and the first words come alone, the probe panels follow at PANEL_INTERVAL_S
        # (at once when a guard event arrives), the trend twice a second, the guard log at the end.
        box_out: Any = ""  # the message box empties with the first update the page gets
        shown = words_shown = False
        try:
            last_panels, last_trend, events_drawn = float("-inf"), time.monotonic(), 0
            for live in updates:
                if not live.done and not live.tokens and not shown:
                    # no word within FIRST_WORDS_WAIT_S (a long prompt): show the message while the model reads it
                    yield (chat_messages(st), box_out, "✎ Thinking…", *[gr.skip()] * 5)
                    box_out, shown = gr.skip(), True
                    continue
                if not live.done and not words_shown:  # the first words first: panels follow with the next update
                    yield (chat_messages(st), box_out, status_line(st, live), *[gr.skip()] * 5)
                    box_out, shown, words_shown = gr.skip(), True, True
                    continue
                now = time.monotonic()
                draw_panels = live.done or len(live.events) != events_drawn or now - last_panels >= PANEL_INTERVAL_S
                redraw_trend = live.done or now - last_trend > 0.5
                panels: tuple[Any, ...] = (gr.skip(),) * 3
                if draw_panels:
                    panels, last_panels, events_drawn = reply_panels(st, live, trait), now, len(live.events)
                if redraw_trend:
                    last_trend = now
                yield (
                    chat_messages(st),
                    box_out,
                    status_line(st, live),
                    *panels,
                    trend_panel(st, trait, live) if redraw_trend else gr.skip(),
                    plots.guard_log_html(st.session.guard_log) if live.done else gr.skip(),
                )
                box_out, shown = gr.skip(), True
            if st.last is not None and st.last.reply.stopped:
                view = full_view(st, trait)
                yield (view[0], box_out, *view[1:])
        except PlaygroundError as exc:
            yield (chat_messages(st), message, error_md(describe_error(exc)), *[gr.skip()] * 5)

    respond_ins = [state, box, heat_trait, temperature, max_tokens, seed, *sliders]
    respond_outs = [state, chatbot, box, status, *panel_outs]
    for trigger in (box.submit, send.click):
        trigger(
            respond,
            respond_ins,
            respond_outs,
            show_progress="hidden",
            api_name="send",
            api_visibility="undocumented",
            concurrency_id="generate",
        )

    def do_stop(st: ChatState | None):
        if st is not None and st.request_stop():
            return "■ Stopping…"
        return gr.skip()

    stop.click(do_stop, state, status, queue=False, show_progress="hidden", api_visibility="private")

    def regenerate(st: ChatState | None, trait: str, temp: float, max_tok: float, seed_v, *steer):
        if st is None or st.busy:
            yield (
                gr.skip(),
                gr.skip(),
                gr.skip(),
                "⚠ Still answering — press Stop (Esc) first." if st else "",
                *[gr.skip()] * 5,
            )
            return
        rec = st.undo()
        if rec is None:
            yield (gr.skip(), gr.skip(), gr.skip(), "Nothing to regenerate yet.", *[gr.skip()] * 5)
            return
        yield from respond(st, rec.user, trait, temp, max_tok, seed_v, *steer)

    regen.click(
        regenerate,
        [state, heat_trait, temperature, max_tokens, seed, *sliders],
        respond_outs,
        show_progress="hidden",
        api_visibility="private",
        concurrency_id="generate",
    )

    def do_undo(st: ChatState | None, trait: str):
        if st is None:
            return full_view(st, trait)
        try:
            rec = st.undo()
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        return full_view(st, trait, "↩ Took back the last exchange." if rec else "Nothing to undo.")

    undo.click(do_undo, [state, heat_trait], chat_outs, api_visibility="private")

    def do_clear(st: ChatState | None, trait: str):
        if st is None:
            return full_view(st, trait)
        try:
            st.clear()
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        return full_view(st, trait, "⌫ Started a new conversation.")

    clear.click(do_clear, [state, heat_trait], chat_outs, api_visibility="private")

    def show_turn(st: ChatState | None, trait: str, evt: gr.SelectData):
        turn = turn_for_message(st, evt.index if isinstance(evt.index, int) else evt.index[0])
        if st is None or turn is None:
            return gr.skip(), gr.skip(), gr.skip()
        return reply_panels(st, st.turns[turn].reply, trait, turn)

    chatbot.select(show_turn, [state, heat_trait], [bars, alerts, heat], api_visibility="private")

    def redraw_trait(st: ChatState | None, trait: str):
        live = st.last.reply if st is not None and st.last is not None else None
        _, _, h = reply_panels(st, live, trait)
        return h, trend_panel(st, trait, live)

    heat_trait.change(redraw_trait, [state, heat_trait], [heat, trend], api_visibility="private")

    def reset_steering(st: ChatState | None):
        return _controls(st.persona if st is not None else None, traits)[: len(traits)]

    reset.click(reset_steering, state, sliders, api_visibility="private")

    def export_chat(st: ChatState | None):
        if st is None:
            return gr.update(visible=False), error_md("Nothing to export: pick a persona first.")
        EXPORT_DIR.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = EXPORT_DIR / f"chat-{st.persona_id}-{stamp}-{id(st) % 10000:04d}.json"
        path.write_text(st.export_json(), encoding="utf-8")
        return gr.update(value=str(path), visible=True), f"⬇ Exported {len(st.turns)} exchange(s)."

    export_btn.click(export_chat, state, [export_file, status], api_visibility="private")

    def import_chat(upload: str | None, trait: str, st: ChatState | None):
        keep = (st, gr.skip(), *full_view(st, trait), *persona_view(st))
        if not upload:
            return keep
        try:
            transcript = parse_transcript(read_upload(upload), Path(upload).name)
            new = ChatState.from_transcript(pg, transcript)
        except PlaygroundError as exc:
            return (
                st,
                gr.skip(),
                *full_view(
                    st,
                    trait,
                    error_md(f"Could not import the chat: {describe_error(exc)}\nThe current chat is unchanged."),
                ),
                *persona_view(st),
            )
        note = f"⬆ Imported {len(new.turns)} exchange(s) with {new.persona.name}."
        return (new, gr.update(value=new.persona_id), *full_view(new, trait, note), *persona_view(new))

    import_btn.upload(import_chat, [import_btn, heat_trait, state], select_outs, api_visibility="private")

    def do_reload_policy(st: ChatState | None):
        issues = pg.policies.reload()
        note = (
            error_md(
                "The policy file has problems; the previous policy stays in force.\n"
                + "\n".join(str(i) for i in issues)
            )
            if issues
            else "✓ Policy reloaded."
        )
        policy = st.policy if st is not None else pg.policies.policy
        return plots.policy_html(policy, st.persona.name if st else ""), note

    reload_policy.click(do_reload_policy, state, [policy_view, policy_status], api_visibility="private")

    view = lambda st, trait, note="": (*full_view(st, trait, note), *persona_view(st))  # noqa: E731
    return ChatTab(
        ChatLink(state, persona_dd, heat_trait, tabs, select_outs, view),
        (load_page, [persona_dd, heat_trait, state], select_outs),
    )


def _controls(p: Persona | None, traits: list[str]) -> list[float]:
    """Slider values for a persona: its steering per trait, then temperature and max tokens (defaults without
    a persona)."""
    if p is None:
        return [0.0] * len(traits) + [0.7, 160.0]
    steering = [float(p.steering.get(t, 0.0)) for t in traits]
    return steering + [float(p.sampling.temperature), float(p.sampling.max_tokens)]


def _persona_controls(pg: Playground, persona_id: str, traits: list[str]) -> list[float]:
    """``_controls`` of a persona by id (the defaults when it can't be loaded; the page then shows why)."""
    try:
        return _controls(pg.catalog.persona(persona_id), traits)
    except PlaygroundError:
        return _controls(None, traits)

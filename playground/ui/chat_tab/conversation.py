"""The conversation: the chat, the message box and the buttons under it. Send (Enter) streams a reply
(``streaming``); Stop, Regenerate, Undo and Clear act on the tab's ``ChatState``. Export and Import sit in the
same row; ``history`` wires them."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...errors import PlaygroundError
from ..chat_state import ChatState
from ..views import describe_error, error_md, full_view
from .parts import ChatParts, Conversation
from .streaming import BUSY, reply_updates

KEYS = (
    "Keys: **Enter** send · **Shift+Enter** new line · **Esc** stop · **Alt+R** regenerate · "
    "**Alt+Z** undo · **Alt+L** clear · **Alt+D** dark/light · **/** back to the message box"
)


def render() -> Conversation:
    chatbot = gr.Chatbot(
        label="Chat", show_label=False, height=440, elem_id="chat", buttons=["copy", "copy_all"], layout="bubble"
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
    status = gr.Markdown(elem_id="status-box")  # right under the box: thinking, timing and errors stay in view
    with gr.Row():
        stop = gr.Button("■ Stop", size="sm", elem_id="stop", variant="stop")
        regen = gr.Button("↻ Regenerate", size="sm", elem_id="regen")
        undo = gr.Button("↩ Undo", size="sm", elem_id="undo")
        clear = gr.Button("⌫ Clear", size="sm", elem_id="clear")
        export_btn = gr.Button("⬇ Export chat", size="sm", elem_id="export")
        import_btn = gr.UploadButton(
            "⬆ Import chat", size="sm", file_types=[".json"], type="filepath", elem_id="import"
        )
    gr.Markdown(KEYS, elem_classes=["pp-keys"])
    export_file = gr.File(label="Chat export (JSON)", visible=False, elem_id="export-file")
    return Conversation(chatbot, box, send, stop, regen, undo, clear, export_btn, import_btn, export_file, status)


def listen(p: ChatParts) -> None:
    def respond(st: ChatState | None, message: str, trait: str, temp: float, max_tok: float, seed_v, *steer):
        """The chat state (made here when the message beat the page's load event), then the reply's updates."""
        made: Any = gr.skip()
        if st is None:
            try:
                # the picker still shows the start persona: nothing else was chosen
                st = made = ChatState(p.pg, p.start)
            except PlaygroundError as exc:
                note = error_md(f"Pick a valid persona first: {describe_error(exc)}")
                yield (gr.skip(), gr.skip(), message, note, *[gr.skip()] * 5)
                return
        for update in reply_updates(p.traits, st, message, trait, temp, max_tok, seed_v, steer):
            yield (made, *update)
            made = gr.skip()

    respond_outs = [p.state, p.convo.chatbot, p.convo.box, p.convo.status, *p.panel_outs]
    for trigger in (p.convo.box.submit, p.convo.send.click):
        trigger(
            respond,
            [p.state, p.convo.box, p.probes.heat_trait, *p.steering.values],
            respond_outs,
            show_progress="hidden",
            api_name="send",
            api_visibility="undocumented",
            concurrency_id="generate",
        )
    _listen_stop_regenerate(p, respond, respond_outs)
    _listen_undo_clear(p)


def _listen_stop_regenerate(p: ChatParts, respond, respond_outs: list[Any]) -> None:
    def do_stop(st: ChatState | None):
        if st is not None and st.request_stop():
            return "■ Stopping…"
        return gr.skip()

    p.convo.stop.click(do_stop, p.state, p.convo.status, queue=False, show_progress="hidden", api_visibility="private")

    def regenerate(st: ChatState | None, trait: str, temp: float, max_tok: float, seed_v, *steer):
        if st is None or st.busy:
            yield (gr.skip(), gr.skip(), gr.skip(), BUSY if st else "", *[gr.skip()] * 5)
            return
        rec = st.undo()
        if rec is None:
            yield (gr.skip(), gr.skip(), gr.skip(), "Nothing to regenerate yet.", *[gr.skip()] * 5)
            return
        yield from respond(st, rec.user, trait, temp, max_tok, seed_v, *steer)

    p.convo.regen.click(
        regenerate,
        [p.state, p.probes.heat_trait, *p.steering.values],
        respond_outs,
        show_progress="hidden",
        api_visibility="private",
        concurrency_id="generate",
    )


def _listen_undo_clear(p: ChatParts) -> None:
    def do_undo(st: ChatState | None, trait: str):
        if st is None:
            return full_view(st, trait)
        try:
            rec = st.undo()
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        return full_view(st, trait, "↩ Took back the last exchange." if rec else "Nothing to undo.")

    p.convo.undo.click(do_undo, [p.state, p.probes.heat_trait], p.chat_outs, api_visibility="private")

    def do_clear(st: ChatState | None, trait: str):
        if st is None:
            return full_view(st, trait)
        try:
            st.clear()
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        return full_view(st, trait, "⌫ Started a new conversation.")

    p.convo.clear.click(do_clear, [p.state, p.probes.heat_trait], p.chat_outs, api_visibility="private")

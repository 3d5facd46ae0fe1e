"""The conversation: the chat, the message box and the buttons under it. Send (Enter) streams a reply
(``streaming``); a message sent while a reply is written is kept and sent after it (``ChatState.queue``; Stop
puts it back in the box). Stop, Regenerate (another reply, the earlier ones kept), Undo and Clear act on the tab's
``ChatState``. The row under the chat (alternatives, Continue, edit, context meter) is ``turn_tools``; Export and
Import sit in the button row; ``history`` wires them."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...errors import PlaygroundError
from ..chat_state import ChatState
from ..views import chat_messages, describe_error, error_md, full_view
from . import turn_tools
from .parts import ChatParts, Conversation
from .streaming import BUSY, reply_updates

KEYS = (
    "Keys: **Enter** send (while a reply is written: sent after it) · **Shift+Enter** new line · **Esc** stop · "
    "**Alt+R** another reply (← → browse them) · **Alt+Z** undo · **Alt+L** clear · **Alt+D** dark/light · "
    "**/** back to the message box · ✎ on your message edits it (a new reply follows; later exchanges are dropped)"
)
QUEUED = "⏳ Queued: your message will be sent when this reply ends (■ Stop puts it back in the box)."


def render() -> Conversation:
    chatbot = gr.Chatbot(
        label="Chat",
        show_label=False,
        height=400,  # with the row of reply tools under it, the status line stays in a 1000 px high window
        elem_id="chat",
        buttons=["copy", "copy_all"],
        layout="bubble",
        editable="user",
    )
    tools = turn_tools.render()
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
    return Conversation(
        chatbot, box, send, stop, regen, undo, clear, export_btn, import_btn, export_file, status, tools
    )


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
        if _queued(st, message):  # a reply is being written: this message follows it (a repeated Enter: no)
            yield (made, chat_messages(st), "", QUEUED if st.pending else gr.skip(), *[gr.skip()] * 5)
            return
        updates = reply_updates(p.traits, st, message, trait, temp, max_tok, seed_v, steer)
        for update in turn_tools.and_pending(p, st, updates, trait, temp, max_tok, seed_v, *steer):
            yield (made, *update)
            made = gr.skip()

    respond_outs = [p.state, *p.stream_outs]
    for trigger in (p.convo.box.submit, p.convo.send.click):
        event = trigger(
            respond,
            [p.state, p.convo.box, p.probes.heat_trait, *p.steering.values],
            respond_outs,
            show_progress="hidden",
            api_name="send",
            api_visibility="undocumented",
            concurrency_id="generate",
            trigger_mode="multiple",  # Enter while a reply streams reaches the server: the message is queued
        )
        turn_tools.after(p, event)
    _listen_stop_regenerate(p)
    _listen_undo_clear(p)


def _queued(st: ChatState, message: str) -> bool:
    try:
        return st.queue(message)
    except PlaygroundError:  # empty or too long: reply_updates says so
        return False


def _listen_stop_regenerate(p: ChatParts) -> None:
    def do_stop(st: ChatState | None, box: str):
        """Stop the reply; messages kept to follow it go back to the box (before anything typed since)."""
        if st is None:
            return gr.skip(), gr.skip()
        kept = st.take_pending()
        stopping = st.request_stop()
        back = "\n\n".join([*kept, box] if (box or "").strip() else kept)
        note = ("■ Stopping…" if stopping else "") + (" Your queued message is back in the box." if kept else "")
        return note or gr.skip(), back if kept else gr.skip()

    p.convo.stop.click(
        do_stop,
        [p.state, p.convo.box],
        [p.convo.status, p.convo.box],
        queue=False,
        show_progress="hidden",
        api_visibility="private",
    )

    def regenerate(st: ChatState | None, trait: str, temp: float, max_tok: float, seed_v, *steer):
        if st is None or st.busy:
            yield (gr.skip(), gr.skip(), BUSY if st else "", *[gr.skip()] * 5)
            return
        if st.last is None:
            yield (gr.skip(), gr.skip(), "Nothing to regenerate yet.", *[gr.skip()] * 5)
            return
        updates = reply_updates(p.traits, st, st.last.user, trait, temp, max_tok, seed_v, steer, how="regenerate")
        yield from turn_tools.and_pending(p, st, updates, trait, temp, max_tok, seed_v, *steer)

    event = p.convo.regen.click(
        regenerate,
        [p.state, p.probes.heat_trait, *p.steering.values],
        p.stream_outs,
        show_progress="hidden",
        api_visibility="private",
        concurrency_id="generate",
    )
    turn_tools.after(p, event)


def _listen_undo_clear(p: ChatParts) -> None:
    def do_undo(st: ChatState | None, trait: str):
        if st is None:
            return full_view(st, trait)
        try:
            rec = st.undo()
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        return full_view(st, trait, "↩ Took back the last exchange." if rec else "Nothing to undo.")

    undone = p.convo.undo.click(do_undo, [p.state, p.probes.heat_trait], p.chat_outs, api_visibility="private")
    turn_tools.refresh_after(p, undone)

    def do_clear(st: ChatState | None, trait: str):
        if st is None:
            return full_view(st, trait)
        try:
            st.clear()
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        return full_view(st, trait, "⌫ Started a new conversation.")

    cleared = p.convo.clear.click(do_clear, [p.state, p.probes.heat_trait], p.chat_outs, api_visibility="private")
    turn_tools.refresh_after(p, cleared)

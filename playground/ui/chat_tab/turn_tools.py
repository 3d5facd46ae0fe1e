"""What chat users reach for, under the chat: ← / → through the alternative replies to the last message (the
one shown is what the model sees next; regenerating adds one), ▸ Continue for a reply cut at the token limit,
editing a message (the pencil on it: a new reply follows, later exchanges are dropped), and the context meter.
Messages sent while a reply is written are kept by ``ChatState.queue``; every event that writes a reply sends
them after it (``and_pending``, on the server: API clients get them too), and the page chains the same behind it
(``after``: a safety net for an event that ended early). Handlers adapt ``ChatState``; views come from
``views``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from ...errors import PlaygroundError
from ..chat_state import ChatState
from ..views import chat_messages, context_meter, full_view, swipe_label, turn_for_message
from .parts import ChatParts, TurnTools
from .streaming import reply_updates

_STREAMING: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "concurrency_id": "generate"}
EDIT_BUSY = "⚠ Still answering — wait for the reply (or press Stop) before editing; your edit is in the box."


def render() -> TurnTools:
    with gr.Row(elem_id="turn-tools", equal_height=True):
        prev = gr.Button("← prev", size="sm", elem_id="swipe-prev", visible=False, min_width=70, scale=0)
        count = gr.Button("", size="sm", elem_id="swipe-count", visible=False, interactive=False, scale=0, min_width=90)
        nxt = gr.Button("next →", size="sm", elem_id="swipe-next", visible=False, min_width=70, scale=0)
        cont = gr.Button("▸ Continue", size="sm", elem_id="continue", visible=False, min_width=110, scale=0)
        meter = gr.HTML("", elem_id="context-meter", scale=1, container=False)
    return TurnTools(prev, count, nxt, cont, meter)


def tools_view(st: ChatState | None, max_tok: float | None = None) -> tuple:
    """Values for ``TurnTools.outs``: the swipe controls when the last message has alternatives, Continue when
    the last reply was cut (or stopped), the meter (left as it is while a reply is written)."""
    last = st.last if st is not None else None
    several = last is not None and last.count > 1
    idle = st is not None and not st.busy
    cut = idle and last is not None and (last.reply.cut or last.reply.stopped) and not last.reply.blocked
    return (
        gr.update(visible=several, interactive=several and last.shown > 0),
        gr.update(value=swipe_label(st), visible=several),
        gr.update(visible=several, interactive=several and last.shown < last.count - 1),
        gr.update(visible=cut),
        context_meter(st, int(max_tok) if max_tok else None) if idle else gr.skip(),
    )


def after(p: ChatParts, event: Any) -> Any:
    """Chain behind an event that writes a reply: send the messages kept meanwhile, then redraw the tools."""

    def pending(st: ChatState | None, trait: str, temp, max_tok, seed_v, *steer):
        yield from send_pending(p, st, trait, temp, max_tok, seed_v, *steer)

    sent = event.then(pending, [p.state, p.probes.heat_trait, *p.steering.values], p.stream_outs, **_STREAMING)
    return refresh_after(p, sent)


def refresh_after(p: ChatParts, event: Any) -> Any:
    """Chain the tools' redraw behind ``event``."""
    return event.then(tools_view, [p.state, p.steering.max_tokens], p.convo.tools.outs, api_visibility="private")


def and_pending(p: ChatParts, st: ChatState, updates: Iterator[tuple], *args: Any) -> Iterator[tuple]:
    """A reply's ``updates``, then those of the messages kept while it was written (``args``: trait, temperature,
    max tokens, seed and the steering values)."""
    yield from updates
    yield from _pending(p, st, *args)


def _pending(p: ChatParts, st: ChatState | None, trait: str, temp, max_tok, seed_v, *steer) -> Iterator[tuple]:
    """Send the kept messages one after the other, once no reply is written (a reply written meanwhile sends
    them after it)."""
    while st is not None and st.pending and not st.busy:
        yield from reply_updates(p.traits, st, st.pending[0], trait, temp, max_tok, seed_v, steer, how="pending")


def send_pending(p: ChatParts, st: ChatState | None, *args: Any) -> Iterator[tuple]:
    sent = False
    for update in _pending(p, st, *args):
        sent = True
        yield update
    if not sent:
        yield (gr.skip(),) * len(p.stream_outs)


def listen(p: ChatParts) -> None:
    tools = p.convo.tools
    reply_inputs = [p.state, p.probes.heat_trait, *p.steering.values]

    def swipe(st: ChatState | None, trait: str, step: int) -> tuple:
        if st is None:
            return full_view(st, trait)
        try:
            st.swipe(step)
        except PlaygroundError as exc:
            return full_view(st, trait, f"⚠ {exc}")
        note = f"Reply {st.last.shown + 1} of {st.last.count}: the model takes this one as its answer."
        return full_view(st, trait, note)

    def back(st: ChatState | None, trait: str) -> tuple:
        return swipe(st, trait, -1)

    def forward(st: ChatState | None, trait: str) -> tuple:
        return swipe(st, trait, 1)

    for button, fn in ((tools.prev, back), (tools.next, forward)):
        refresh_after(p, button.click(fn, [p.state, p.probes.heat_trait], p.chat_outs, api_visibility="private"))

    def continue_reply(st: ChatState | None, trait: str, temp, max_tok, seed_v, *steer):
        if st is None or st.last is None:
            yield (gr.skip(), gr.skip(), "Nothing to continue yet.", *[gr.skip()] * 5)
            return
        updates = reply_updates(p.traits, st, st.last.user, trait, temp, max_tok, seed_v, steer, how="continue")
        yield from and_pending(p, st, updates, trait, temp, max_tok, seed_v, *steer)

    after(p, tools.cont.click(continue_reply, reply_inputs, p.stream_outs, **_STREAMING))

    def edit(evt: gr.EditData, st: ChatState | None, trait: str, temp, max_tok, seed_v, *steer):
        turn = turn_for_message(st, evt.index if isinstance(evt.index, int) else evt.index[0])
        text = _text(evt.value)
        if st is None or turn is None or not text.strip() or st.turns[turn].user == text:
            yield (chat_messages(st), *[gr.skip()] * 7)  # nothing to do: the chat as it was
            return
        if st.busy:
            gr.Warning(EDIT_BUSY)
            yield (chat_messages(st), text, EDIT_BUSY, *[gr.skip()] * 5)
            return
        later = len(st.turns) - turn - 1
        if later:
            gr.Info(f"Edited message {turn + 1}: the {later} exchange(s) after it were dropped.")
        updates = reply_updates(p.traits, st, text, trait, temp, max_tok, seed_v, steer, how="edit", turn=turn)
        yield from and_pending(p, st, updates, trait, temp, max_tok, seed_v, *steer)

    after(p, p.convo.chatbot.edit(edit, reply_inputs, p.stream_outs, **_STREAMING))


def _text(value: Any) -> str:
    """An edited message's text (Gradio 6 may hand over a string or a list of content parts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v.get("text", "") if isinstance(v, dict) else str(v) for v in value)
    return str(value or "")

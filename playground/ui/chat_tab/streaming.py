"""How a reply reaches the page while it is written: the updates for [chatbot, message box, status, bars,
alerts, heatmap, trend, guard log], paced so the words are not held up by the panels.

What each update sends costs time on the way to the page (every output, ``gr.skip()`` too, is processed by
Gradio), so: the message and the first words come alone, the probe panels follow at ``PANEL_INTERVAL_S`` (at
once when a guard event arrives), the trend twice a second, the guard log at the end.

The same updates serve every way a reply starts (``how``): a message sent ("send", or "edit" replacing turn
``turn``), one kept while a reply was written ("pending": the first kept message, when no reply is written),
another reply to the last message ("regenerate") and the rest of the last reply ("continue")."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import gradio as gr

from ...errors import PlaygroundError
from .. import plots
from ..chat_state import ChatState
from ..views import (
    FIRST_WORDS_WAIT_S,
    PANEL_INTERVAL_S,
    UPDATE_INTERVAL_S,
    chat_messages,
    describe_error,
    error_md,
    full_view,
    reply_panels,
    status_line,
    trend_panel,
)

BUSY = "⚠ Still answering — press Stop (Esc) first."


def _start(
    st: ChatState, message: str, traits: list[str], temp: float, max_tok: float, seed_v, steer: Sequence, how: str, turn
):
    """Start generating (raises PlaygroundError for a bad message or steering); None when nothing is sent."""
    steering = {t: float(v) for t, v in zip(traits, steer, strict=True)}
    options = {
        "temperature": float(temp),
        "max_tokens": int(max_tok),
        "seed": int(seed_v) if seed_v is not None and seed_v >= 0 else None,
        "min_interval": UPDATE_INTERVAL_S,
        "first_wait": FIRST_WORDS_WAIT_S,
    }
    if how == "regenerate":
        return st.regenerate(steering, **options)
    if how == "continue":
        return st.continue_reply(steering, **options)
    if how == "pending":
        return st.stream_next(steering, **options)
    return st.stream(message, steering, edit=turn if how == "edit" else None, **options)


def reply_updates(
    traits: list[str],
    st: ChatState,
    message: str,
    trait: str,
    temp: float,
    max_tok: float,
    seed_v,
    steer: Sequence[float],
    how: str = "send",
    turn: int | None = None,
) -> Iterator[tuple]:
    keep: Any = message if how in ("send", "edit", "pending") else gr.skip()  # back to the box when not sent
    if st.busy and how != "pending":
        gr.Warning(BUSY)  # a toast as well: the message stays in the box, nothing is lost
        yield (gr.skip(), keep, BUSY, *[gr.skip()] * 5)
        return
    if not (message or "").strip():
        yield (gr.skip(), "", "", *[gr.skip()] * 5) if how == "send" else (gr.skip(),) * 8
        return
    try:  # generation starts now
        updates = _start(st, message, traits, temp, max_tok, seed_v, steer, how, turn)
    except PlaygroundError as exc:
        if how == "pending":  # not sendable: every kept message goes back to the box
            keep = "\n\n".join(st.take_pending())
        gr.Warning(f"Not sent: {describe_error(exc)}")  # e.g. over the length limit: said where the user looks
        yield (chat_messages(st), keep, error_md(describe_error(exc)), *[gr.skip()] * 5)
        return
    if updates is None:  # "pending": nothing waits, or another reply is written (its writer sends it after)
        return
    box_out: Any = "" if how == "send" else gr.skip()  # a sent message leaves the box with the first update
    shown = words_shown = False
    try:
        last_panels, last_trend, events_drawn = float("-inf"), time.monotonic(), 0
        said = ""
        for live in updates:
            if not live.done and not live.tokens:
                # no word yet: show the message, and why nothing comes (a long prompt, another chat, a baseline)
                status = status_line(st, live)
                if not shown or status != said:
                    yield (chat_messages(st), box_out, status, *[gr.skip()] * 5)
                    box_out, shown, said = gr.skip(), True, status
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
        gr.Warning(describe_error(exc))
        yield (chat_messages(st), keep, error_md(describe_error(exc)), *[gr.skip()] * 5)

"""Gradio Blocks UI. Handlers only adapt library calls (playground.web / session) to components."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .errors import PlaygroundError
from .session import ChatSession, Playground
from .web import api_chat, describe_error, stream_into_history

CSS = """
#status-box {min-height: 1.5em}
.error-box {color: #b00020; white-space: pre-wrap; font-family: monospace}
"""


def _greeting_history(session: ChatSession) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": session.greeting}] if session.greeting else []


def build_ui(pg: Playground, default_persona: str = "assistant") -> gr.Blocks:
    personas = pg.catalog.list_personas()
    choices = [(label, pid) for pid, label in personas]
    ids = [pid for pid, _ in personas]
    start = default_persona if default_persona in ids else (ids[0] if ids else None)

    with gr.Blocks(title="Persona Playground") as demo:
        gr.Markdown(f"## Persona Playground  \nModel: `{pg.model_spec or 'smollm2-135m (embedded)'}`")
        session_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                persona_dd = gr.Dropdown(choices=choices, value=start, label="Persona", elem_id="persona-select")
                persona_info = gr.Markdown(elem_id="persona-info")
                chatbot = gr.Chatbot(label="Chat", height=480, elem_id="chat")
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Type a message and press Enter",
                        show_label=False,
                        scale=5,
                        elem_id="msg",
                        autofocus=True,
                    )
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                with gr.Row():
                    stop = gr.Button("Stop", elem_id="stop")
                    clear = gr.Button("Clear", elem_id="clear")
                status = gr.Markdown(elem_id="status-box")

        def select_persona(persona_id: str):
            try:
                session = pg.session(persona_id)
            except PlaygroundError as exc:
                msg = f"**Persona '{persona_id}' can't be used:**\n```\n{describe_error(exc)}\n```"
                return None, [], "", msg
            info = f"**{session.persona.name}** — {session.persona.description}"
            return session, _greeting_history(session), info, ""

        def respond(message: str, history: list, session: ChatSession | None):
            if session is None:
                yield history, session, "Pick a valid persona first.", message
                return
            if not message.strip():
                yield history, session, "", ""
                return
            try:
                for hist, event in stream_into_history(session, message, history):
                    note = ""
                    if event.result is not None and event.result.notices:
                        note = "  \n".join(f"ℹ️ {n}" for n in event.result.notices)
                    yield hist, session, note, ""
            except PlaygroundError as exc:
                yield history, session, f"**Error:** {describe_error(exc)}", message

        def clear_chat(session: ChatSession | None):
            if session is None:
                return []
            session.clear()
            return _greeting_history(session)

        demo.load(select_persona, persona_dd, [session_state, chatbot, persona_info, status])
        persona_dd.change(select_persona, persona_dd, [session_state, chatbot, persona_info, status])
        ev1 = box.submit(respond, [box, chatbot, session_state], [chatbot, session_state, status, box])
        ev2 = send.click(respond, [box, chatbot, session_state], [chatbot, session_state, status, box])
        stop.click(None, None, None, cancels=[ev1, ev2])
        clear.click(clear_chat, session_state, chatbot)

        def chat_endpoint(message: str, persona: str, steer_json: str) -> dict:
            """Chat once with a persona; returns the same JSON object as `python -m playground chat --json`."""
            try:
                return api_chat(pg, message, persona, steer_json)
            except PlaygroundError as exc:
                raise gr.Error(describe_error(exc)) from exc

        gr.api(chat_endpoint, api_name="chat")
    return demo

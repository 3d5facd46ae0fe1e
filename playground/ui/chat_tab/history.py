"""Export and import of a conversation: Export writes the tab's chat as JSON (``ChatState.export_json``) to a
file the page offers for download; Import checks an uploaded export (``transcript.parse_transcript``) and
continues that chat, with its persona. A bad upload leaves the current chat as it was."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr

from ...errors import PlaygroundError
from ..chat_state import ChatState
from ..transcript import parse_transcript
from ..views import describe_error, error_md, read_upload
from . import turn_tools
from .parts import ChatParts

EXPORT_DIR = Path(tempfile.gettempdir()) / "persona-playground-exports"


def export_file(st: ChatState) -> Path:
    """Write the chat to a new file under EXPORT_DIR; returns its path."""
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = EXPORT_DIR / f"chat-{st.persona_id}-{stamp}-{id(st) % 10000:04d}.json"
    path.write_text(st.export_json(), encoding="utf-8")
    return path


def listen(p: ChatParts) -> None:
    def export_chat(st: ChatState | None):
        if st is None:
            return gr.update(visible=False), error_md("Nothing to export: pick a persona first.")
        path = export_file(st)
        alternatives = sum(t.count - 1 for t in st.turns)
        more = f" and {alternatives} alternative repl{'y' if alternatives == 1 else 'ies'}" if alternatives else ""
        return gr.update(value=str(path), visible=True), f"⬇ Exported {len(st.turns)} exchange(s){more}."

    p.convo.export_btn.click(export_chat, p.state, [p.convo.export_file, p.convo.status], api_visibility="private")

    def import_chat(upload: str | None, trait: str, st: ChatState | None):
        if not upload:
            return (st, gr.skip(), *p.view(st, trait))
        try:
            transcript = parse_transcript(read_upload(upload), Path(upload).name)
            new = ChatState.from_transcript(p.pg, transcript)
        except PlaygroundError as exc:
            note = error_md(f"Could not import the chat: {describe_error(exc)}\nThe current chat is unchanged.")
            return (st, gr.skip(), *p.view(st, trait, note))
        note = f"⬆ Imported {len(new.turns)} exchange(s) with {new.persona.name}."
        return (new, gr.update(value=new.persona_id), *p.view(new, trait, note))

    imported = p.convo.import_btn.upload(
        import_chat, [p.convo.import_btn, p.probes.heat_trait, p.state], p.select_outs, api_visibility="private"
    )
    turn_tools.refresh_after(p, imported)

"""The Persona editor tab: YAML with validation as you type, atomic save / save as, new from template,
reload from disk, open a persona file or character card, and "try in chat". Handlers adapt
``playground.ui.editor_logic``; nothing invalid is ever written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..chat.session import Playground
from ..errors import PlaygroundError
from . import editor_logic as editor
from .views import error_md, read_upload
from .web import ChatState, describe_error


@dataclass
class ChatLink:
    """What the editor needs from the Chat tab: its state, persona picker and how to redraw it."""

    state: gr.State
    persona_dd: gr.Dropdown
    heat_trait: gr.Dropdown
    tabs: gr.Tabs
    outputs: list[Any]  # [state, persona_dd, *view components]
    view: Callable[[ChatState | None, str | None, str], tuple]  # the values for outputs[2:]


def build_editor_tab(pg: Playground, choices: list[tuple[str, str]], start: str, chat: ChatLink) -> dict[str, Any]:
    """Create the editor components in the current Gradio context; returns them by name."""
    catalog = pg.catalog
    initial_choices = choices
    persona_dd, heat_trait, state, tabs = chat.persona_dd, chat.heat_trait, chat.state, chat.tabs
    select_outs = chat.outputs

    def persona_choices() -> list[tuple[str, str]]:
        return editor.file_choices(catalog)

    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                ed_file = gr.Dropdown(
                    choices=initial_choices, value=start, label="Persona file", elem_id="ed-file", scale=4
                )
                ed_reload = gr.Button("⟳ Reload from disk", size="sm", elem_id="ed-reload", scale=1)
            code = gr.Code(
                language="yaml",
                wrap_lines=True,
                lines=26,
                max_lines=40,
                label="Persona YAML",
                elem_id="persona-code",
                interactive=True,
            )
        with gr.Column(scale=2):
            ed_issues = gr.HTML(elem_id="ed-issues")
            ed_name = gr.Textbox(label="Save as (name → file name)", placeholder="my_persona", elem_id="ed-name")
            with gr.Row():
                ed_save = gr.Button("Save", variant="primary", elem_id="ed-save")
                ed_save_as = gr.Button("Save as", elem_id="ed-save-as")
            with gr.Row():
                ed_new = gr.Button("✎ New from template", elem_id="ed-new")
                ed_try = gr.Button("▶ Try in chat (unsaved)", elem_id="ed-try")
            ed_upload = gr.UploadButton(
                "⬆ Open a persona YAML or character card (JSON/PNG)",
                file_types=[".yaml", ".yml", ".json", ".png"],
                type="filepath",
                elem_id="ed-upload",
            )
            ed_status = gr.Markdown(elem_id="ed-status")
            gr.Markdown(
                "Validation runs as you type; problems are anchored to line and column. Saving writes "
                "atomically and only valid YAML — a file on disk is never replaced by something broken. "
                "**Ctrl+S** saves. Names are sanitised (letters, digits, `_`, `-`).",
                elem_classes=["pp-keys"],
            )

    def validate(text: str, file_id: str | None, name: str):
        stem = file_id or name or "new_persona"
        check = editor.check_text(catalog, text or "", f"{stem}.yaml")
        return editor.issues_html(check.issues, text or "")

    def open_file(file_id: str | None):
        if not file_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            text, path, note = editor.read_persona_text(catalog, file_id)
        except PlaygroundError as exc:
            return gr.skip(), gr.skip(), gr.skip(), error_md(describe_error(exc))
        check = editor.check_text(catalog, text, f"{file_id}.yaml")
        return (
            text,
            editor.issues_html(check.issues, text),
            file_id,
            f"Opened `{path}`; **Save** writes `{catalog.writable_root / (file_id + '.yaml')}`."
            + (f"\n\n⚠ {note}" if note else ""),
        )

    ed_file.change(open_file, ed_file, [code, ed_issues, ed_name, ed_status], api_visibility="private")
    code.change(
        validate,
        [code, ed_file, ed_name],
        ed_issues,
        trigger_mode="always_last",
        show_progress="hidden",
        api_name="validate",
        api_visibility="undocumented",
    )

    def refreshed(selected: str | None):
        choices = persona_choices()
        return gr.update(choices=choices, value=selected), gr.update(choices=choices)

    def save(text: str, file_id: str | None, name: str, new: bool):
        target = (name if new else (file_id or name)) or ""
        try:
            if not target.strip():
                raise PlaygroundError("give the persona a name in 'Save as' first")
            saved = editor.save_persona(catalog, target, text or "", new=new)
        except PlaygroundError as exc:
            msg = describe_error(exc)
            return (gr.skip(), gr.skip(), gr.skip(), error_md(f"Not saved: {msg}\nYour text stays in the editor."))
        ed_update, chat_update = refreshed(saved.persona_id)
        return ed_update, chat_update, saved.persona_id, f"✓ {saved.message}"

    save_outs = [ed_file, persona_dd, ed_name, ed_status]
    ed_save.click(
        lambda t, f, n: save(t, f, n, False),
        [code, ed_file, ed_name],
        save_outs,
        api_name="save_persona",
        api_visibility="undocumented",
    )
    ed_save_as.click(lambda t, f, n: save(t, f, n, True), [code, ed_file, ed_name], save_outs, api_visibility="private")

    def reload_disk(file_id: str | None):
        choices = persona_choices()
        ids_now = [pid for _, pid in choices]
        keep = file_id if file_id in ids_now else (ids_now[0] if ids_now else None)
        text, issues, name, note = open_file(keep)
        note = f"⟳ Reloaded {len(ids_now)} persona files from disk. " + (note if isinstance(note, str) else "")
        return gr.update(choices=choices, value=keep), gr.update(choices=choices), text, issues, name, note

    ed_reload.click(
        reload_disk, ed_file, [ed_file, persona_dd, code, ed_issues, ed_name, ed_status], api_visibility="private"
    )

    def new_from_template():
        return (
            gr.update(value=None),
            editor.TEMPLATE,
            editor.issues_html([], editor.TEMPLATE),
            "",
            "✎ A new persona from the template: edit it, type a name above and press **Save as**.",
        )

    ed_new.click(new_from_template, None, [ed_file, code, ed_issues, ed_name, ed_status], api_visibility="private")

    def upload_persona(upload: str | None):
        if not upload:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            text, suggested, message = editor.upload_to_text(catalog, read_upload(upload), Path(upload).name)
        except PlaygroundError as exc:
            return (
                gr.skip(),
                gr.skip(),
                gr.skip(),
                gr.skip(),
                error_md(f"Could not open the upload: {describe_error(exc)}\nThe editor is unchanged."),
            )
        check = editor.check_text(catalog, text, f"{suggested}.yaml")
        return (
            gr.update(value=None),
            text,
            editor.issues_html(check.issues, text),
            suggested,
            (f"⬆ {message} Press **Save as** to keep it."),
        )

    ed_upload.upload(
        upload_persona, ed_upload, [ed_file, code, ed_issues, ed_name, ed_status], api_visibility="private"
    )

    def try_in_chat(text: str, file_id: str | None, name: str, trait: str, st: ChatState | None):
        stem = file_id or name or "draft"
        check = editor.check_text(catalog, text or "", f"{stem}.yaml")
        if not check.ok or check.persona is None:
            note = error_md("Fix the problems listed first; nothing was changed.")
            return (st, gr.skip(), *chat.view(st, trait, ""), note, gr.skip())
        new = ChatState(pg, check.persona)
        note = f"▶ Chatting with the editor's version of **{new.persona.name}** (not saved)."
        return (new, gr.skip(), *chat.view(new, trait, note), note, gr.Tabs(selected="chat"))

    ed_try.click(
        try_in_chat,
        [code, ed_file, ed_name, heat_trait, state],
        [*select_outs, ed_status, tabs],
        api_visibility="private",
    )
    return {
        "file": ed_file,
        "code": code,
        "issues": ed_issues,
        "name": ed_name,
        "status": ed_status,
        "on_load": (open_file, ed_file, [code, ed_issues, ed_name, ed_status]),  # for the page's load event
    }

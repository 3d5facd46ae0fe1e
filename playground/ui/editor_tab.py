"""The Persona editor tab: YAML with validation as you type, atomic save / save as, new from template,
reload from disk, open a persona file or character card, and "try in chat". Handlers adapt
``playground.ui.editor_logic``; nothing invalid is ever written.

``build_editor_tab`` renders the components (``EditorParts``) and wires them in groups: open and validate,
save and reload, new and upload, try in chat."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..chat.fingerprint import FingerprintHistory, measure
from ..chat.session import Playground
from ..definitions.personas import Catalog
from ..errors import PlaygroundError
from ..steering.persona_space import load_characters
from . import editor_logic as editor
from .chat_state import ChatState
from .fingerprint_view import fingerprint_html, measuring_html, waiting_html
from .views import describe_error, error_md, read_upload

HINT = (
    "Validation runs as you type; problems are anchored to line and column. Saving writes "
    "atomically and only valid YAML — a file on disk is never replaced by something broken. "
    "**Ctrl+S** saves. Names are sanitised (letters, digits, `_`, `-`)."
)


@dataclass
class ChatLink:
    """What the editor needs from the Chat tab: its state, persona picker and how to redraw it."""

    state: gr.State
    persona_dd: gr.Dropdown
    heat_trait: gr.Dropdown
    tabs: gr.Tabs
    outputs: list[Any]  # [state, persona_dd, *view components]
    view: Callable[[ChatState | None, str | None, str], tuple]  # the values for outputs[2:]
    after_new_chat: Callable[[Any], Any] = lambda event: event  # chains the chat's redraws behind an event


@dataclass
class EditorParts:
    file: gr.Dropdown
    reload: gr.Button
    code: gr.Code
    issues: gr.HTML
    name: gr.Textbox
    save: gr.Button
    save_as: gr.Button
    new: gr.Button
    try_chat: gr.Button
    upload: gr.UploadButton
    status: gr.Markdown
    fingerprint: gr.HTML

    @property
    def loaded(self) -> list[Any]:
        """What opening a file fills: the text, its problems, the save-as name and the status."""
        return [self.code, self.issues, self.name, self.status]


def build_editor_tab(pg: Playground, choices: list[tuple[str, str]], start: str, chat: ChatLink) -> dict[str, Any]:
    """Create the editor components in the current Gradio context; returns them by name."""
    ed = _render(choices, start)
    catalog = pg.catalog

    def open_file(file_id: str | None):
        return _open_file(catalog, file_id)

    _listen_open_validate(catalog, ed, open_file)
    saves = _listen_save_reload(catalog, ed, chat, open_file)

    def fingerprint(file_id: str | None, status: str) -> Iterator[Any]:
        yield from fingerprint_updates(pg, file_id, status)

    for saved in saves:  # after a save: measure the persona and show it against the version saved before
        saved.then(
            fingerprint,
            [ed.file, ed.status],
            ed.fingerprint,
            show_progress="hidden",
            api_visibility="private",
            concurrency_id="generate",
        )
    _listen_new_upload(catalog, ed)
    _listen_try_in_chat(pg, ed, chat)
    return {
        "file": ed.file,
        "code": ed.code,
        "issues": ed.issues,
        "name": ed.name,
        "status": ed.status,
        "on_load": (open_file, ed.file, ed.loaded),  # for the page's load event
    }


def _render(choices: list[tuple[str, str]], start: str) -> EditorParts:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                file = gr.Dropdown(choices=choices, value=start, label="Persona file", elem_id="ed-file", scale=4)
                reload = gr.Button("⟳ Reload from disk", size="sm", elem_id="ed-reload", scale=1)
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
            issues = gr.HTML(elem_id="ed-issues")
            name = gr.Textbox(label="Save as (name → file name)", placeholder="my_persona", elem_id="ed-name")
            with gr.Row():
                save = gr.Button("Save", variant="primary", elem_id="ed-save")
                save_as = gr.Button("Save as", elem_id="ed-save-as")
            with gr.Row():
                new = gr.Button("✎ New from template", elem_id="ed-new")
                try_chat = gr.Button("▶ Try in chat (unsaved)", elem_id="ed-try")
            upload = gr.UploadButton(
                "⬆ Open a persona YAML or character card (JSON/PNG)",
                file_types=[".yaml", ".yml", ".json", ".png"],
                type="filepath",
                elem_id="ed-upload",
            )
            status = gr.Markdown(elem_id="ed-status")
            gr.Markdown(HINT, elem_classes=["pp-keys"])
            gr.Markdown("#### The designer's fingerprint")
            fingerprint = gr.HTML(waiting_html(len(load_characters()[0])), elem_id="ed-fingerprint")
    return EditorParts(file, reload, code, issues, name, save, save_as, new, try_chat, upload, status, fingerprint)


def _open_file(catalog: Catalog, file_id: str | None) -> tuple:
    """Values for ``EditorParts.loaded`` after opening a persona file (skips when there is none)."""
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


def _listen_open_validate(catalog: Catalog, ed: EditorParts, open_file: Callable) -> None:
    def validate(text: str, file_id: str | None, name: str):
        stem = file_id or name or "new_persona"
        check = editor.check_text(catalog, text or "", f"{stem}.yaml")
        return editor.issues_html(check.issues, text or "")

    # `input`, not `change`: only a user's choice opens a file; Save setting the picker must not overwrite "✓ Saved"
    ed.file.input(open_file, ed.file, ed.loaded, api_visibility="private")
    ed.code.change(
        validate,
        [ed.code, ed.file, ed.name],
        ed.issues,
        trigger_mode="always_last",
        show_progress="hidden",
        api_name="validate",
        api_visibility="undocumented",
    )


def fingerprint_updates(pg: Playground, file_id: str | None, status: str) -> Iterator[Any]:
    """The fingerprint panel after a save: 'measuring', then the profile against the previous save's (nothing
    when the save failed: the file on disk is still the previous version)."""
    if not file_id or not (status or "").startswith("✓"):
        yield gr.skip()
        return
    yield measuring_html(file_id)
    try:
        now = measure(pg, pg.catalog.persona(file_id))
        before = FingerprintHistory(now.model).record(now)
    except PlaygroundError as exc:
        yield f'<div class="pp-panel"><div class="pp-empty">Fingerprint not measured: {describe_error(exc)}</div></div>'
        return
    yield fingerprint_html(pg, now, before)


def _listen_save_reload(catalog: Catalog, ed: EditorParts, chat: ChatLink, open_file: Callable) -> list[Any]:
    def save(text: str, file_id: str | None, name: str, new: bool):
        target = (name if new else (file_id or name)) or ""
        try:
            if not target.strip():
                raise PlaygroundError("give the persona a name in 'Save as' first")
            saved = editor.save_persona(catalog, target, text or "", new=new)
        except PlaygroundError as exc:
            msg = describe_error(exc)
            return (gr.skip(), gr.skip(), gr.skip(), error_md(f"Not saved: {msg}\nYour text stays in the editor."))
        choices = editor.file_choices(catalog)
        return (
            gr.update(choices=choices, value=saved.persona_id),
            gr.update(choices=choices),
            saved.persona_id,
            f"✓ {saved.message}",
        )

    save_outs = [ed.file, chat.persona_dd, ed.name, ed.status]
    saved = ed.save.click(
        lambda t, f, n: save(t, f, n, False),
        [ed.code, ed.file, ed.name],
        save_outs,
        api_name="save_persona",
        api_visibility="undocumented",
    )
    saved_as = ed.save_as.click(
        lambda t, f, n: save(t, f, n, True), [ed.code, ed.file, ed.name], save_outs, api_visibility="private"
    )

    def reload_disk(file_id: str | None):
        choices = editor.file_choices(catalog)
        ids_now = [pid for _, pid in choices]
        keep = file_id if file_id in ids_now else (ids_now[0] if ids_now else None)
        text, issues, name, note = open_file(keep)
        note = f"⟳ Reloaded {len(ids_now)} persona files from disk. " + (note if isinstance(note, str) else "")
        return gr.update(choices=choices, value=keep), gr.update(choices=choices), text, issues, name, note

    ed.reload.click(reload_disk, ed.file, [ed.file, chat.persona_dd, *ed.loaded], api_visibility="private")
    return [saved, saved_as]


def _listen_new_upload(catalog: Catalog, ed: EditorParts) -> None:
    def new_from_template():
        return (
            gr.update(value=None),
            editor.TEMPLATE,
            editor.issues_html([], editor.TEMPLATE),
            "",
            "✎ A new persona from the template: edit it, type a name above and press **Save as**.",
        )

    ed.new.click(new_from_template, None, [ed.file, *ed.loaded], api_visibility="private")

    def upload_persona(upload: str | None):
        if not upload:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            text, suggested, message = editor.upload_to_text(catalog, read_upload(upload), Path(upload).name)
        except PlaygroundError as exc:
            note = error_md(f"Could not open the upload: {describe_error(exc)}\nThe editor is unchanged.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), note
        check = editor.check_text(catalog, text, f"{suggested}.yaml")
        return (
            gr.update(value=None),
            text,
            editor.issues_html(check.issues, text),
            suggested,
            f"⬆ {message} Press **Save as** to keep it.",
        )

    ed.upload.upload(upload_persona, ed.upload, [ed.file, *ed.loaded], api_visibility="private")


def _listen_try_in_chat(pg: Playground, ed: EditorParts, chat: ChatLink) -> None:
    def try_in_chat(text: str, file_id: str | None, name: str, trait: str, st: ChatState | None):
        stem = file_id or name or "draft"
        check = editor.check_text(pg.catalog, text or "", f"{stem}.yaml")
        if not check.ok or check.persona is None:
            note = error_md("Fix the problems listed first; nothing was changed.")
            return (st, gr.skip(), *chat.view(st, trait, ""), note, gr.skip())
        new = ChatState(pg, check.persona)
        note = f"▶ Chatting with the editor's version of **{new.persona.name}** (not saved)."
        shown = gr.update(value=file_id) if file_id in pg.catalog.persona_files() else gr.skip()  # picker agrees
        return (new, shown, *chat.view(new, trait, note), note, gr.Tabs(selected="chat"))

    tried = ed.try_chat.click(
        try_in_chat,
        [ed.code, ed.file, ed.name, chat.heat_trait, chat.state],
        [*chat.outputs, ed.status, chat.tabs],
        api_visibility="private",
    )
    chat.after_new_chat(tried)

"""The persona editor behind the UI: validate text with located issues, save atomically, import uploads.

Rules it keeps:

- nothing invalid is ever written, so a valid file is never replaced by an invalid one (the text stays in
  the editor for the user to fix);
- writes are atomic (temp file + rename, ``playground.files.write_atomic``);
- file names come from ``sanitize_id`` (no paths, no dots), and only into the catalog's writable folder;
- "save as" never replaces an existing persona.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..definitions.checks import check_document
from ..definitions.personas import Catalog, Persona, persona_from_data, sanitize_id
from ..definitions.validation import merged_issues
from ..definitions.yaml_source import MAX_FILE_BYTES, load_yaml_bytes
from ..errors import Issue, PlaygroundError, ValidationError
from ..files import write_atomic

TEMPLATE = """\
# yaml-language-server: $schema=../schemas/persona.schema.json
# A new persona. Fill in the fields, then "Save as" with a name. Reference: README, "Persona YAML".
name: New Persona
description: One line that says who this is (shown in the persona picker).
system_prompt: |
  You are ... Describe who is talking, their values and their habits of speech.
  Keep your answers short.
greeting: "Hello! What shall we talk about?"
examples:
  - user: "What do you do?"
    assistant: "An example reply in this persona's voice."
role_models: []            # e.g. [caretaker, educator]; files in personas/role_models/
steering: {}               # trait -> strength, -2..2 (0 off, 1 strong but coherent)
sampling:
  temperature: 0.7
  max_tokens: 160
tags: [custom]
"""


@dataclass
class Check:
    """The result of validating editor text: issues (empty = valid) and the persona when valid."""

    issues: list[Issue]
    persona: Persona | None = None

    @property
    def ok(self) -> bool:
        return not self.issues


def check_text(catalog: Catalog, text: str, name: str = "persona.yaml") -> Check:
    """Validate YAML text as a persona, exactly as a file on disk would be."""
    stem = Path(name).stem
    try:
        doc = load_yaml_bytes((text or "").encode("utf-8"), name, lenient=True)
    except ValidationError as exc:
        return Check(exc.issues)
    except yaml.YAMLError as exc:  # e.g. control characters, which the reader rejects before parsing
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if isinstance(exc, yaml.reader.ReaderError):
            line, column = _offset_to_line_col(text or "", exc.position)
        return Check([Issue(name, line, column, f"YAML error: {getattr(exc, 'problem', None) or exc}")])
    issues = merged_issues(doc.problems, check_document(doc, Path(name), catalog, kind="persona"))
    if not issues and not isinstance(doc.data, dict):
        issues = [doc.issue((), "a persona file must be a mapping of fields (name, description, system_prompt, ...)")]
    if issues:
        return Check(issues)
    try:
        persona_id = sanitize_id(stem)
    except ValidationError:
        persona_id = "persona"
    return Check([], persona_from_data(doc.data, persona_id))


def _offset_to_line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def issues_html(issues: list[Issue], text: str) -> str:
    """Issues as a list anchored to editor lines, each with the offending line and a caret under the column."""
    if not issues:
        return '<div class="pp-panel"><div class="pp-ok">✓ Valid persona</div></div>'
    lines = (text or "").splitlines()
    items = []
    for issue in issues:
        source = lines[issue.line - 1] if 0 < issue.line <= len(lines) else ""
        caret = " " * max(issue.column - 1, 0) + "^"
        snippet = f"<pre>{issue.line:>4} | {html.escape(source)}\n     | {caret}</pre>" if source.strip() else ""
        items.append(
            f'<li data-line="{issue.line}" data-column="{issue.column}"><b>Line {issue.line}, column {issue.column}:'
            f"</b> {html.escape(issue.message)}{snippet}</li>"
        )
    count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
    return f'<div class="pp-panel pp-issues"><div class="pp-bad">✗ {count}</div><ul>{"".join(items)}</ul></div>'


def file_choices(catalog: Catalog) -> list[tuple[str, str]]:
    """(label, id) of every persona file, valid or not (invalid ones are marked), for the pickers.

    Like ``Catalog.list_personas`` but no file can break the list, whatever error its loading raises.
    """
    out = []
    for pid, path in catalog.persona_files().items():
        try:
            persona = catalog.load_persona_path(path)
            out.append((f"{persona.name} ({pid})", pid))
        except (PlaygroundError, yaml.YAMLError, OSError):
            out.append((f"{pid} (invalid)", pid))
    return out


def read_persona_text(catalog: Catalog, persona_id: str) -> tuple[str, Path, str]:
    """(text, path, note) of a persona file as it is on disk; invalid files too (the editor shows their problems).

    A file that is not UTF-8 is shown with replacement characters and a note that says where the first bad
    byte is; saving then writes UTF-8.
    """
    files = catalog.persona_files()
    if persona_id not in files:
        raise PlaygroundError(f"no persona file named '{persona_id}' (it may have been deleted; press Reload)")
    path = files[persona_id]
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PlaygroundError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise PlaygroundError(f"{path} is over {MAX_FILE_BYTES // 1024} KiB; a persona file must be smaller")
    note = ""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        note = (
            f"{path.name} is not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); the editor shows \ufffd for "
            "bytes it cannot read, and saving writes UTF-8"
        )
    return raw.decode("utf-8", errors="replace").removeprefix("\ufeff"), path, note


@dataclass
class Saved:
    persona_id: str
    path: Path
    message: str


_SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=[^\n]*\n", re.MULTILINE)


def with_schema_line(text: str, target: Path) -> str:
    """``text`` with its yaml-language-server line pointing at the shipped schema from ``target``'s folder (or
    dropped when ``target`` is outside this checkout, where no relative path reaches the schema)."""
    from ..definitions.cards.importer import schema_comment

    line = schema_comment(target)
    return _SCHEMA_LINE.sub(lambda _: f"{line}\n" if line else "", text, count=1)


def save_persona(catalog: Catalog, name: str, text: str, *, new: bool = False) -> Saved:
    """Validate, then write ``<writable root>/<sanitized name>.yaml`` atomically.

    ``new=True`` (save as) refuses to replace an existing persona. Raises ValidationError (issues located in
    the text) or PlaygroundError; nothing is written then.
    """
    persona_id = sanitize_id(name)
    check = check_text(catalog, text, f"{persona_id}.yaml")
    if not check.ok:
        raise ValidationError(check.issues)
    existing = catalog.persona_files().get(persona_id)
    if new and existing is not None:
        raise PlaygroundError(
            f"a persona named '{persona_id}' already exists ({existing}); pick another name, "
            "or open it in the editor and press Save"
        )
    root = catalog.writable_root
    target = (root / f"{persona_id}.yaml").resolve()
    if target.parent != root.resolve():  # sanitize_id makes this impossible; keep the guarantee explicit
        raise PlaygroundError(f"refusing to write outside {root}")
    data = with_schema_line(text if text.endswith("\n") else text + "\n", target)
    write_atomic(target, data.encode("utf-8"), overwrite=not new)
    note = ""
    if existing is not None and existing.resolve() != target:
        note = f" (a copy in {root} that takes precedence over {existing})"
    return Saved(persona_id, target, f"Saved {target}{note}.")


def upload_to_text(catalog: Catalog, data: bytes, filename: str) -> tuple[str, str, str]:
    """An uploaded persona YAML or character card -> (editor text, suggested id, message). Writes nothing.

    A ``.yaml`` file with a ``system_prompt`` is taken as a persona file as it is (its problems, if any, are
    shown by the editor's validation); anything else goes through the character-card importer.
    """
    from ..definitions.cards import import_upload

    stem = Path(filename).stem
    if Path(filename).suffix.lower() in (".yaml", ".yml"):
        if len(data) > MAX_FILE_BYTES:
            raise PlaygroundError(f"{filename}: over {MAX_FILE_BYTES // 1024} KiB; a persona file must be smaller")
        try:
            doc = yaml.safe_load(data.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            doc = None
        if doc is None or (isinstance(doc, dict) and "system_prompt" in doc):
            text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
            return text, _safe_stem(stem), f"Loaded {filename} into the editor (not saved yet)."
    text, report = import_upload(data, filename, catalog)
    persona_id = report.persona_id or _safe_stem(stem)
    notes = "; ".join(getattr(report, "notes", []) or [])
    message = f"Imported {filename} ({report.format}) into the editor (not saved yet)."
    return text, persona_id, message + (f" Notes: {notes}" if notes else "")


def _safe_stem(stem: str) -> str:
    try:
        return sanitize_id(stem)
    except ValidationError:
        return "imported"

"""Import a character card as persona YAML: decode, map, render, validate, and only then write."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...errors import Issue, PlaygroundError, ValidationError
from ...files import write_atomic
from ...paths import REPO_ROOT
from ..checks import check_document
from ..personas import Catalog, Persona, persona_from_data, sanitize_id
from ..yaml_source import load_yaml_bytes
from .decode import MAX_CARD_BYTES, card_error, read_card_bytes
from .mapping import card_to_persona_data
from .report import ImportReport

SCHEMA_FILE = REPO_ROOT / "schemas" / "persona.schema.json"


@dataclass
class ImportResult:
    persona_id: str
    yaml_text: str
    persona: Persona
    report: ImportReport


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def schema_comment(target: Path | None) -> str:
    """The yaml-language-server line for a persona file at ``target`` (relative path to the shipped schema)."""
    if target is None:
        return f"# yaml-language-server: $schema=../schemas/{SCHEMA_FILE.name}"
    folder = target.resolve().parent
    try:
        folder.relative_to(REPO_ROOT)
    except ValueError:
        return ""  # outside this checkout: no stable relative path to the schema
    return f"# yaml-language-server: $schema={Path(os.path.relpath(SCHEMA_FILE, folder)).as_posix()}"


def render_yaml(data: dict[str, Any], report: ImportReport, schema_line: str = "") -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
    header = [schema_line] if schema_line else []
    header.append(f"# Imported from {report.source}: {report.format}.")
    header.append("# What went where: docs/CARDS.md. Card fields with no persona field are under 'extras'.")
    return "\n".join(header) + "\n" + body


def _validated(text: str, name: str, persona_id: str, catalog: Catalog) -> Persona:
    try:
        doc = load_yaml_bytes(text.encode("utf-8"), name)
    except ValidationError as exc:
        raise ValidationError(
            [Issue(i.file, i.line, i.column, f"imported persona: {i.message}") for i in exc.issues]
        ) from None
    issues = check_document(doc, Path(name), catalog, kind="persona")
    if issues:
        raise ValidationError([Issue(i.file, i.line, i.column, f"imported persona: {i.message}") for i in issues])
    return persona_from_data(doc.data, persona_id)


def default_id(name: str, filename: str, report: ImportReport) -> str:
    """A safe file stem: from the character's name, else (say, a name in another script) from the card's file."""
    for candidate in (name, Path(filename).stem):
        try:
            persona_id = sanitize_id(candidate)
        except ValidationError:
            continue
        if candidate is not name:
            report.note(f"the name {name!r} has no letters a-z or digits; the persona id comes from the file name")
        return persona_id
    report.note(f"neither the name {name!r} nor the file name gives a usable id; using 'character'")
    return "character"


def _finish(
    persona_data: dict[str, Any], report: ImportReport, catalog: Catalog, target: Path | None, persona_id: str
) -> ImportResult:
    report.persona_id = persona_id
    text = render_yaml(persona_data, report, schema_comment(target))
    name = str(target) if target is not None else f"{persona_id}.yaml"
    return ImportResult(persona_id, text, _validated(text, name, persona_id, catalog), report)


def import_card_bytes(
    data: bytes,
    filename: str,
    catalog: Catalog | None = None,
    *,
    target: Path | None = None,
    persona_id: str | None = None,
) -> ImportResult:
    """Turn a card file's bytes into validated persona YAML (nothing is written).

    ``target`` is where the YAML will be saved (for the schema line and error locations); the persona id
    defaults to the sanitized character name. Raises ValidationError for a bad card or an invalid result.
    """
    catalog = catalog or Catalog()
    persona_data, report = card_to_persona_data(read_card_bytes(data, filename), catalog.refs())
    return _finish(
        persona_data, report, catalog, target, persona_id or default_id(persona_data["name"], filename, report)
    )


def import_upload(data: bytes, filename: str, catalog: Catalog | None = None) -> tuple[str, ImportReport]:
    """For the UI: an uploaded card's bytes and file name -> (persona YAML text, report). Writes nothing."""
    result = import_card_bytes(data, filename, catalog)
    return result.yaml_text, result.report


def read_limited(path: Path) -> bytes:
    """A card file's bytes, refusing (without reading it all) anything over the size limit."""
    name = path.name
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CARD_BYTES + 1)
    except FileNotFoundError:
        raise card_error(name, "file not found") from None
    except IsADirectoryError:
        raise card_error(name, "is a directory, expected a card file") from None
    except OSError as exc:
        raise card_error(name, f"cannot read file: {exc.strerror}") from None
    if len(raw) > MAX_CARD_BYTES:
        size = path.stat().st_size
        raise card_error(name, f"file is {size:,} bytes; a character card may be at most {MAX_CARD_BYTES:,}")
    return raw


def import_card_file(
    path: str | Path, out: str | Path | None = None, *, force: bool = False, catalog: Catalog | None = None
) -> ImportResult:
    """Import a card file and write the persona YAML (default: ``<personas>/<name>.yaml``), atomically.

    Never overwrites an existing file unless ``force``; writes nothing when anything is wrong.
    """
    catalog = catalog or Catalog()
    source = Path(path)
    raw = read_limited(source)
    persona_data, report = card_to_persona_data(read_card_bytes(raw, str(source)), catalog.refs())
    if out is not None:
        target = Path(out)
        if target.suffix not in (".yaml", ".yml"):
            raise PlaygroundError(f"--out {target}: a persona file must end in .yaml")
        persona_id = target.stem
    else:
        persona_id = default_id(persona_data["name"], str(source), report)
        target = catalog.writable_root / f"{persona_id}.yaml"
    result = _finish(persona_data, report, catalog, target, persona_id)
    if target.exists() and not force:
        raise PlaygroundError(f"{target} already exists; pass --force to overwrite it, or choose --out")
    write_atomic(target, result.yaml_text.encode("utf-8"), overwrite=force)
    result.report.written_to = str(target)
    return result

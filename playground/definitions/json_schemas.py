"""The JSON Schema files shipped under ``schemas/``, generated from the validator's own specs.

Editors that speak yaml-language-server pick them up from the first line of each shipped YAML file
(``# yaml-language-server: $schema=../schemas/persona.schema.json``). Names of role models and traits
are checked by ``python -m playground validate`` only: they depend on the files installed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import write_atomic
from ..paths import REPO_ROOT
from . import schema

SCHEMA_DIR = REPO_ROOT / "schemas"
KINDS: dict[str, tuple[schema.Spec, str]] = {
    "persona": (schema.PERSONA, "Persona Playground persona"),
    "role_model": (schema.ROLE_MODEL, "Persona Playground role model"),
    "trait": (schema.TRAIT, "Persona Playground trait"),
    "policy": (schema.POLICY, "Persona Playground guard policy"),
}


def file_name(kind: str) -> str:
    return f"{kind}.schema.json"


def generate() -> dict[str, str]:
    """File name -> JSON text, for every kind of definition file."""
    out = {}
    for kind, (spec, title) in KINDS.items():
        doc = schema.document_json_schema(spec, title)
        out[file_name(kind)] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return out


def outdated(folder: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from what the specs generate."""
    stale = []
    for name, text in generate().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write the schema files that changed (atomically); returns the paths written."""
    written = []
    stale = set(outdated(folder))
    for name, text in generate().items():
        if name in stale:
            written.append(write_atomic(folder / name, text.encode("utf-8"), overwrite=True))
    return written

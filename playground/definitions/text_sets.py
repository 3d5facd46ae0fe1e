"""Plain text-set files (lists of prompts under named keys) with located errors.

Used by the probes' training-side files (``personas/calibration/reference.yml``: everyday prompts and
strength-validation questions; ``personas/calibration/probe_training.yml``: varied ways of eliciting each trait)
and by the held-out trait evaluation sets (``personas/heldout/traits_eval*.yml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Issue, ValidationError
from .yaml_source import YamlDocument, load_yaml_file


def _text_list(doc: YamlDocument, data: Any, path: tuple[str | int, ...], issues: list[Issue]) -> tuple[str, ...]:
    if not isinstance(data, list) or not data:
        line, col = doc.where(path)
        issues.append(Issue(doc.file, line, col, f"'{'.'.join(map(str, path))}' must be a non-empty list of texts"))
        return ()
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, str) or not item.strip():
            line, col = doc.where((*path, i))
            issues.append(Issue(doc.file, line, col, f"item {i + 1} of '{'.'.join(map(str, path))}' must be a text"))
        else:
            out.append(item.strip())
    return tuple(out)


def read_text_sets(path: Path, keys: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The lists under ``keys`` of a YAML mapping; one ValidationError with every located problem."""
    doc = load_yaml_file(path)
    issues: list[Issue] = []
    if not isinstance(doc.data, dict):
        raise ValidationError([Issue(doc.file, 1, 1, "expected a mapping of named lists")])
    out = {k: _text_list(doc, doc.data.get(k), (k,), issues) for k in keys}
    if issues:
        raise ValidationError(issues)
    return out


def read_nested_text_sets(path: Path, key: str, keys: tuple[str, ...]) -> dict[str, dict[str, tuple[str, ...]]]:
    """``{name: {k: texts}}`` from the mapping under ``key`` (e.g. ``traits: {evil: {instructions: [...]}}``)."""
    doc = load_yaml_file(path)
    block = doc.data.get(key) if isinstance(doc.data, dict) else None
    if not isinstance(block, dict) or not block:
        line, col = doc.where((key,))
        raise ValidationError([Issue(doc.file, line, col, f"'{key}' must be a mapping of names to lists")])
    issues: list[Issue] = []
    out = {}
    for name, entry in block.items():
        entry = entry if isinstance(entry, dict) else {}
        out[str(name)] = {k: _text_list(doc, entry.get(k), (key, name, k), issues) for k in keys}
    if issues:
        raise ValidationError(issues)
    return out


@dataclass(frozen=True)
class TraitPrompts:
    """Ways of eliciting one trait: instructions that ask for it, and characters whose nature implies it."""

    instructions: tuple[str, ...]
    personas: tuple[str, ...]

    @property
    def systems(self) -> tuple[str, ...]:
        return self.instructions + self.personas


def read_trait_prompts(path: Path) -> dict[str, TraitPrompts]:
    """``traits: {name: {instructions: [...], personas: [...]}}`` of a text-set file."""
    sets = read_nested_text_sets(path, "traits", ("instructions", "personas"))
    return {name: TraitPrompts(v["instructions"], v["personas"]) for name, v in sets.items()}

"""Trait definitions (personas/traits/*.yaml): how to elicit, suppress and judge a character trait."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError, ValidationError
from . import schema
from .checks import check_document
from .personas import Catalog
from .yaml_source import load_yaml_file


@dataclass(frozen=True)
class TraitDefinition:
    name: str
    description: str
    eliciting: tuple[str, ...]
    suppressing: tuple[str, ...]
    extraction_questions: tuple[str, ...]
    evaluation_questions: tuple[str, ...]
    judge_positive: tuple[str, ...] = ()
    judge_negative: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.eliciting, self.suppressing, strict=True))


def load_trait(name_or_path: str, catalog: Catalog | None = None) -> TraitDefinition:
    """Load and validate a trait by name (personas/traits/NAME.yaml) or by path."""
    catalog = catalog or Catalog()
    files = catalog.trait_files()
    if name_or_path in files:
        path = files[name_or_path]
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise NotFoundError(
                f"no trait named '{name_or_path}'{schema.did_you_mean(name_or_path, list(files))} "
                f"(available: {', '.join(sorted(files))})"
            )
    doc = load_yaml_file(path)
    issues = check_document(doc, path, catalog, kind="trait")
    if issues:
        raise ValidationError(issues)
    d = doc.data
    judge = d.get("judge") or {}
    return TraitDefinition(
        name=d["name"],
        description=d["description"].strip(),
        eliciting=tuple(d["eliciting"]),
        suppressing=tuple(d["suppressing"]),
        extraction_questions=tuple(d["questions"]["extraction"]),
        evaluation_questions=tuple(d["questions"]["evaluation"]),
        judge_positive=tuple(judge.get("positive") or ()),
        judge_negative=tuple(judge.get("negative") or ()),
        path=path,
    )

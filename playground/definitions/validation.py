"""Validate any definition file (persona, role model, trait, guard policy) and report located issues."""

from __future__ import annotations

from pathlib import Path

from ..errors import Issue, ValidationError
from .checks import check_document, guess_kind
from .personas import Catalog
from .yaml_source import load_yaml_file

__all__ = ["check_document", "guess_kind", "validate_file"]


def validate_file(path: str | Path, catalog: Catalog | None = None, kind: str | None = None) -> list[Issue]:
    """All problems in one file; an empty list means it is valid."""
    p = Path(path)
    catalog = catalog or Catalog()
    try:
        doc = load_yaml_file(p)
    except ValidationError as exc:
        return exc.issues
    return check_document(doc, p, catalog, kind)

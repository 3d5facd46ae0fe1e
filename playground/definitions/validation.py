"""Validate any definition file (persona, role model, trait, guard policy) and report located issues."""

from __future__ import annotations

from pathlib import Path

from ..errors import Issue, ValidationError
from .checks import check_document, guess_kind
from .personas import Catalog
from .yaml_source import load_yaml_file

__all__ = ["check_document", "guess_kind", "merged_issues", "validate_file"]


def validate_file(path: str | Path, catalog: Catalog | None = None, kind: str | None = None) -> list[Issue]:
    """All problems in one file; an empty list means it is valid."""
    p = Path(path)
    catalog = catalog or Catalog()
    try:
        doc = load_yaml_file(p, lenient=True)  # duplicate keys are reported with every other problem
    except ValidationError as exc:
        return exc.issues
    return merged_issues(doc.problems, check_document(doc, p, catalog, kind))


def merged_issues(*groups: list[Issue]) -> list[Issue]:
    """Issues of several checks in file order (by line, then column), each once."""
    seen: dict[tuple[int, int, str], Issue] = {}
    for issue in (i for g in groups for i in g):
        seen.setdefault((issue.line, issue.column, issue.message), issue)
    return [seen[k] for k in sorted(seen)]

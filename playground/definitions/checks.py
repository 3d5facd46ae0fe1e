"""Check one parsed definition document (persona, role model, trait, guard policy): schema, references, extras.

Knows nothing of where definitions live: the names a document may refer to come from ``refs`` (a catalog).
``validation.validate_file`` reads a file and checks it against the default catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..errors import Issue
from . import schema
from .yaml_source import YamlDocument


class References(Protocol):
    """Where a document's references are checked: the names of role models, traits and signals that exist."""

    def refs(self) -> dict[str, set[str]]: ...


KINDS = {
    "persona": schema.PERSONA,
    "role_model": schema.ROLE_MODEL,
    "trait": schema.TRAIT,
    "policy": schema.POLICY,
}


def guess_kind(path: Path, data: object) -> str:
    """Decide which schema applies: by folder first, then by the fields present."""
    parent = path.parent.name
    if parent == "role_models":
        return "role_model"
    if parent == "traits":
        return "trait"
    if parent == "policies":
        return "policy"
    if path.stem in ("policy", "guard_policy") or path.stem.endswith("_policy"):
        return "policy"
    if isinstance(data, dict):
        if "principles" in data and "system_prompt" not in data:
            return "role_model"
        if "eliciting" in data or "suppressing" in data:
            return "trait"
        if "signals" in data and "system_prompt" not in data:
            return "policy"
    return "persona"


def _trait_extras(doc: YamlDocument, path: Path) -> list[Issue]:
    data = doc.data
    issues: list[Issue] = []
    if not isinstance(data, dict):
        return issues
    if data.get("name") != path.stem:
        issues.append(doc.issue(("name",), f"trait name '{data.get('name')}' must equal the file name '{path.stem}'"))
    eli, sup = data.get("eliciting"), data.get("suppressing")
    if isinstance(eli, list) and isinstance(sup, list) and len(eli) != len(sup):
        issues.append(
            doc.issue(
                ("suppressing",),
                f"'suppressing' has {len(sup)} instructions but 'eliciting' has {len(eli)}; they are paired by index",
            )
        )
    q = data.get("questions")
    if isinstance(q, dict) and isinstance(q.get("extraction"), list) and isinstance(q.get("evaluation"), list):
        train = set(q["extraction"])
        for i, item in enumerate(q["evaluation"]):
            if item in train:
                issues.append(
                    doc.issue(("questions", "evaluation", i), "evaluation question repeats an extraction question")
                )
    return issues


def _policy_extras(doc: YamlDocument, prefix: tuple[str, ...]) -> list[Issue]:
    """Cross-field checks of a guard policy found at ``prefix`` inside the document."""
    node = doc.data
    for key in prefix:
        node = node.get(key) if isinstance(node, dict) else None
    signals = node.get("signals") if isinstance(node, dict) else None
    issues: list[Issue] = []
    if isinstance(signals, dict):
        for name, rule in signals.items():
            if not isinstance(rule, dict):
                continue
            warn, act = rule.get("warn"), rule.get("act")
            if isinstance(warn, int | float) and isinstance(act, int | float) and warn > act:
                path = prefix + ("signals", str(name), "warn")
                issues.append(doc.issue(path, f"warn ({warn}) is above act ({act}) for '{name}'"))
    return issues


def check_document(doc: YamlDocument, path: Path, catalog: References, kind: str | None = None) -> list[Issue]:
    kind = kind or guess_kind(path, doc.data)
    issues = schema.validate(doc, KINDS[kind], catalog.refs())
    if kind == "trait":
        issues += _trait_extras(doc, path)
    elif kind == "policy":
        issues += _policy_extras(doc, ())
    elif kind == "persona":
        issues += _policy_extras(doc, ("guard",))
    return sorted(issues, key=lambda i: (i.line, i.column))

"""Persona and role-model definitions, the catalog that finds them, and prompt composition."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.sampling import Sampling
from ..errors import Issue, NotFoundError, ValidationError
from ..paths import SHIPPED_PERSONAS
from ..prompt.lorebook import Lorebook, lorebook_from_data, lorebook_to_data
from . import schema
from .checks import check_document
from .yaml_source import YamlDocument, load_yaml_bytes, load_yaml_file

DEFAULT_PERSONA = "assistant"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Example:
    user: str
    assistant: str


@dataclass(frozen=True)
class RoleModel:
    id: str
    name: str
    description: str
    principles: tuple[str, ...]
    path: Path | None = None


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    description: str
    system_prompt: str
    greeting: str = ""
    alternate_greetings: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    post_history_instructions: str = ""
    lorebook: Lorebook | None = None
    role_models: tuple[str, ...] = ()
    steering: dict[str, float] = field(default_factory=dict)
    guard: dict[str, Any] = field(default_factory=dict)
    sampling: Sampling = Sampling()
    tags: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def sanitize_id(name: str) -> str:
    """Turn a user-typed name into a safe file stem (no paths, no dots)."""
    stem = re.sub(r"[^a-z0-9_-]+", "_", name.strip().lower()).strip("_-")
    stem = stem[:64]
    if not stem or not _ID_RE.match(stem):
        raise ValidationError([Issue(name or "<name>", 1, 1, "a persona name needs at least one letter or digit")])
    return stem


def persona_from_data(data: dict[str, Any], persona_id: str, path: Path | None = None) -> Persona:
    """Build a Persona from already-validated data."""
    sampling = Sampling().merged(**(data.get("sampling") or {}))
    return Persona(
        id=persona_id,
        name=data["name"].strip(),
        description=data["description"].strip(),
        system_prompt=data["system_prompt"].strip(),
        greeting=(data.get("greeting") or "").strip(),
        alternate_greetings=tuple(g.strip() for g in data.get("alternate_greetings") or ()),
        examples=tuple(Example(e["user"].strip(), e["assistant"].strip()) for e in data.get("examples") or ()),
        post_history_instructions=(data.get("post_history_instructions") or "").strip(),
        lorebook=lorebook_from_data(data.get("lorebook")),
        role_models=tuple(data.get("role_models") or ()),
        steering={str(k): float(v) for k, v in (data.get("steering") or {}).items()},
        guard=dict(data.get("guard") or {}),
        sampling=sampling,
        tags=tuple(data.get("tags") or ()),
        extras=dict(data.get("extras") or {}),
        path=path,
    )


def persona_to_data(persona: Persona) -> dict[str, Any]:
    """The persona as YAML-ready data (the inverse of ``persona_from_data``); empty fields are left out."""
    out: dict[str, Any] = {
        "name": persona.name,
        "description": persona.description,
        "system_prompt": persona.system_prompt,
    }
    if persona.greeting:
        out["greeting"] = persona.greeting
    if persona.alternate_greetings:
        out["alternate_greetings"] = list(persona.alternate_greetings)
    if persona.examples:
        out["examples"] = [{"user": e.user, "assistant": e.assistant} for e in persona.examples]
    if persona.post_history_instructions:
        out["post_history_instructions"] = persona.post_history_instructions
    if persona.lorebook is not None:
        out["lorebook"] = lorebook_to_data(persona.lorebook)
    if persona.role_models:
        out["role_models"] = list(persona.role_models)
    if persona.steering:
        out["steering"] = dict(persona.steering)
    if persona.guard:
        out["guard"] = dict(persona.guard)
    defaults = Sampling()
    sampling = {k: v for k, v in persona.sampling.__dict__.items() if v != getattr(defaults, k)}
    if sampling:
        out["sampling"] = sampling
    if persona.tags:
        out["tags"] = list(persona.tags)
    if persona.extras:
        out["extras"] = dict(persona.extras)
    return out


def role_model_from_data(data: dict[str, Any], role_id: str, path: Path | None = None) -> RoleModel:
    return RoleModel(
        id=role_id,
        name=data["name"].strip(),
        description=data["description"].strip(),
        principles=tuple(p.strip() for p in data["principles"]),
        path=path,
    )


class Catalog:
    """Finds personas, role models and traits in one or more directories.

    Layout of each directory: ``*.yaml`` personas, ``role_models/*.yaml``,
    ``traits/*.yaml``. Later directories override earlier ones by id.
    """

    def __init__(self, roots: Iterable[Path] | None = None, extra_signals: Iterable[str] = ("persona_drift", "hijack")):
        self.roots = [Path(r) for r in (roots or [SHIPPED_PERSONAS])]
        self.extra_signals = set(extra_signals)

    # -- discovery -------------------------------------------------------------------------
    def _files(self, sub: str) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            folder = root / sub if sub else root
            if folder.is_dir():
                for p in sorted(folder.glob("*.yaml")):
                    found[p.stem] = p
        return found

    def persona_files(self) -> dict[str, Path]:
        return self._files("")

    def role_model_files(self) -> dict[str, Path]:
        return self._files("role_models")

    def trait_files(self) -> dict[str, Path]:
        return self._files("traits")

    def refs(self) -> dict[str, set[str]]:
        traits = set(self.trait_files())
        return {
            "role_model": set(self.role_model_files()),
            "trait": traits,
            "signal": traits | self.extra_signals,
        }

    @property
    def writable_root(self) -> Path:
        return self.roots[-1]

    # -- loading ---------------------------------------------------------------------------
    def check_persona_document(self, doc: YamlDocument) -> list[Issue]:
        """Every problem ``python -m playground validate`` would report for this persona document."""
        if not isinstance(doc.data, dict):
            issues = schema.validate(doc, schema.PERSONA, self.refs())
            return issues or [doc.issue((), "a persona file must be a mapping of fields")]
        return check_document(doc, Path(doc.file), self, kind="persona")

    def parse_persona_text(self, text: str, name: str, persona_id: str | None = None) -> Persona:
        """Validate YAML text as a persona; raise ValidationError with located issues."""
        doc = load_yaml_bytes(text.encode("utf-8"), name)
        issues = self.check_persona_document(doc)
        if issues:
            raise ValidationError(issues)
        return persona_from_data(doc.data, persona_id or Path(name).stem)

    def load_persona_path(self, path: Path) -> Persona:
        doc = load_yaml_file(path)
        issues = self.check_persona_document(doc)
        if issues:
            raise ValidationError(issues)
        return persona_from_data(doc.data, path.stem, path)

    def persona(self, name_or_path: str) -> Persona:
        """Resolve a persona by id (file stem in the catalog) or by a path to a YAML file."""
        files = self.persona_files()
        if name_or_path in files:
            return self.load_persona_path(files[name_or_path])
        candidate = Path(name_or_path)
        if candidate.suffix in (".yaml", ".yml") or candidate.exists():
            return self.load_persona_path(candidate)
        raise NotFoundError(
            f"no persona named '{name_or_path}'{schema.did_you_mean(name_or_path, list(files))} "
            f"(available: {', '.join(sorted(files))}); or pass a path to a .yaml file"
        )

    def role_model(self, role_id: str) -> RoleModel:
        files = self.role_model_files()
        if role_id not in files:
            raise NotFoundError(
                f"no role model named '{role_id}'{schema.did_you_mean(role_id, list(files))} "
                f"(available: {', '.join(sorted(files))})"
            )
        doc = load_yaml_file(files[role_id])
        issues = schema.validate(doc, schema.ROLE_MODEL, self.refs())
        if issues:
            raise ValidationError(issues)
        return role_model_from_data(doc.data, role_id, files[role_id])

    def list_personas(self) -> list[tuple[str, str]]:
        """(id, display label) for every persona file, valid or not (invalid ones are marked)."""
        out = []
        for pid, path in self.persona_files().items():
            try:
                p = self.load_persona_path(path)
                out.append((pid, f"{p.name} ({pid})"))
            except ValidationError:
                out.append((pid, f"{pid} (invalid)"))
        return out


def compose_system_prompt(persona: Persona, role_models: Iterable[RoleModel] = ()) -> str:
    """The final system prompt: the persona's own prompt, then its role models' principles."""
    parts = [persona.system_prompt.strip()]
    roles = list(role_models)
    if roles:
        names = ", ".join(r.name for r in roles)
        lines = [f"You also live by the principles of these role models ({names}):"]
        seen: set[str] = set()
        for role in roles:
            for principle in role.principles:
                if principle not in seen:
                    seen.add(principle)
                    lines.append(f"- {principle}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def render_placeholders(text: str, char: str, user: str = "User") -> str:
    """Substitute the character-card placeholders {{char}} and {{user}} (case-insensitive)."""
    text = re.sub(r"\{\{\s*char\s*\}\}", char, text, flags=re.IGNORECASE)
    return re.sub(r"\{\{\s*user\s*\}\}", user, text, flags=re.IGNORECASE)

"""Map a decoded character card onto the persona schema, accounting for every field.

System prompt order (each part only when the card has it):

1. the card's ``system_prompt`` (``{{original}}`` in it becomes the default header), or else the default
   header ``You are {{char}}. ...``
2. ``description`` (text-generation-webui: ``context``)
3. ``{{char}}'s personality: `` + ``personality`` (tgw: ``char_persona``)
4. ``Scenario: `` + ``scenario`` (tgw: ``world_scenario``)

Parts are separated by a blank line. Fields with no home in the schema go under ``extras`` and are listed
in the report; empty fields are listed as empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import Issue, ValidationError
from ..personas import render_placeholders
from .decode import RawCard
from .examples import parse_mes_example
from .lore import map_character_book
from .report import ImportReport

DEFAULT_HEADER = "You are {{char}}. Stay in character as {{char}} in this conversation with {{user}}."
EXTENSION_KEY = "persona_playground"  # where export-card keeps what a V2 card has no field for
PROMPT_PARTS = (("description", ""), ("personality", "{{char}}'s personality: "), ("scenario", "Scenario: "))
MAX_NAME = 80
MAX_DESCRIPTION = 200

# text-generation-webui names (old and new) -> the card field they mean.
TGW_ALIASES = {
    "char_name": "name",
    "greeting": "first_mes",
    "char_greeting": "first_mes",
    "context": "description",
    "char_persona": "personality",
    "world_scenario": "scenario",
    "example_dialogue": "mes_example",
}
_LEGACY_MACROS = ((re.compile(r"<BOT>", re.IGNORECASE), "{{char}}"), (re.compile(r"<USER>", re.IGNORECASE), "{{user}}"))


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {} or (isinstance(value, str) and not value.strip())


class _Fields:
    """The card's fields, consumed one by one so that whatever is left can go to extras."""

    def __init__(self, card: RawCard, report: ImportReport):
        self.report = report
        self.values: dict[str, Any] = {}
        self.labels: dict[str, str] = {}  # canonical field -> the name the card used
        self.extras: dict[str, Any] = {}
        self.macros = 0
        for key, value in card.fields.items():
            key = str(key)
            canonical = TGW_ALIASES.get(key, key) if card.kind == "tgw" else key
            if canonical in self.values:
                if _is_empty(value) or value == self.values[canonical]:
                    report.note(f"'{key}' repeats '{self.labels[canonical]}'; used '{self.labels[canonical]}'")
                    continue
                if _is_empty(self.values[canonical]):
                    self.report.note(f"'{self.labels[canonical]}' is empty; used '{key}'")
                else:
                    self.keep(key, value, f"'{key}' differs from '{self.labels[canonical]}'")
                    continue
            self.values[canonical] = self._macros(value)
            self.labels[canonical] = key

    def _macros(self, value: Any) -> Any:
        """Rewrite the legacy <BOT>/<USER> placeholders, in nested values too (lorebook entries)."""
        if isinstance(value, str):
            for pattern, new in _LEGACY_MACROS:
                value, count = pattern.subn(new, value)
                self.macros += count
        elif isinstance(value, list):
            value = [self._macros(v) for v in value]
        elif isinstance(value, dict):
            value = {k: self._macros(v) for k, v in value.items()}
        return value

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def keep(self, key: str, value: Any, why: str = "") -> None:
        self.extras[key] = value
        self.report.keep(key)
        if why:
            self.report.note(f"{why}: kept under extras.{key}")

    def take(self, name: str) -> Any:
        """Remove and return a field; empty values are recorded as empty and return None."""
        if name not in self.values:
            return None
        value = self.values.pop(name)
        if _is_empty(value):
            self.report.empty.append(self.label(name))
            return None
        return value

    def text(self, name: str) -> str | None:
        value = self.take(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.keep(self.label(name), value, f"'{self.label(name)}' should be text, got {type(value).__name__}")
            return None
        return value.replace("\r\n", "\n").strip()

    def text_list(self, name: str) -> list[str]:
        value = self.take(name)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.keep(self.label(name), value, f"'{self.label(name)}' should be a list, got {type(value).__name__}")
            return []
        good = [v.strip() for v in value if isinstance(v, str) and v.strip()]
        odd = [v for v in value if not isinstance(v, str)]
        if odd:
            self.keep(self.label(name), odd, f"'{self.label(name)}' has items that are not text")
        return good

    def rest(self) -> None:
        for key in list(self.values):
            value = self.values.pop(key)
            if _is_empty(value):
                self.report.empty.append(self.label(key))
            else:
                self.keep(self.label(key), value)


def summary_line(name: str, *texts: str | None, limit: int = MAX_DESCRIPTION) -> str:
    """A one-line description for the persona picker: the first sentence of the first non-empty text."""
    for text in texts:
        if not text or not text.strip():
            continue
        flat = " ".join(render_placeholders(text, name, "the user").replace("*", "").split())
        sentence = re.split(r"(?<=[.!?])\s", flat, maxsplit=1)[0]
        if len(sentence) > limit:
            sentence = sentence[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
        return sentence
    return f"{name}, imported from a character card."


def _restore_extension(ext: Any, refs: Mapping[str, set[str]], report: ImportReport) -> dict[str, Any]:
    """Persona fields that export-card kept in ``extensions.persona_playground``."""
    if not isinstance(ext, dict):
        return {"extras": {EXTENSION_KEY: ext}}
    ext = dict(ext)
    out: dict[str, Any] = {}
    extras: dict[str, Any] = dict(ext.pop("extras", None) or {})
    description = ext.pop("description", None)
    if isinstance(description, str) and description.strip():
        out["description"] = description.strip()
        report.map(f"extensions.{EXTENSION_KEY}.description", "description")
    elif description is not None:
        extras["description"] = description
    for key in ("guard", "sampling"):
        if key in ext:
            out[key] = ext.pop(key)
            report.map(f"extensions.{EXTENSION_KEY}.{key}", key)
    known_roles = refs.get("role_model")
    roles = ext.pop("role_models", None)
    if isinstance(roles, list):
        good = [r for r in roles if known_roles is None or r in known_roles]
        if good:
            out["role_models"] = good
            report.map(f"extensions.{EXTENSION_KEY}.role_models", "role_models")
        if len(good) < len(roles):
            extras["unknown_role_models"] = [r for r in roles if r not in good]
            report.note(f"role models not installed here, kept under extras.unknown_role_models: {roles}")
    elif roles is not None:
        extras["unknown_role_models"] = roles
    known_traits = refs.get("trait")
    steering = ext.pop("steering", None)
    if isinstance(steering, dict):
        good_steer = {k: v for k, v in steering.items() if known_traits is None or k in known_traits}
        if good_steer:
            out["steering"] = good_steer
            report.map(f"extensions.{EXTENSION_KEY}.steering", "steering")
        if len(good_steer) < len(steering):
            extras["unknown_steering"] = {k: v for k, v in steering.items() if k not in good_steer}
            report.note("steering for traits not installed here kept under extras.unknown_steering")
    elif steering is not None:
        extras["unknown_steering"] = steering
    ext.pop("version", None)
    if ext:
        extras[EXTENSION_KEY] = ext
        report.keep(f"extensions.{EXTENSION_KEY} ({', '.join(ext)})")
    if extras:
        out["extras"] = extras
    return out


def _greetings(fields: _Fields, report: ImportReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    greeting = fields.text("first_mes")
    if greeting:
        out["greeting"] = greeting
        report.map(fields.label("first_mes"), "greeting")
    alternates = fields.text_list("alternate_greetings")
    if alternates:
        out["alternate_greetings"] = alternates
        report.map("alternate_greetings", f"alternate_greetings ({len(alternates)})")
    return out


def _examples(fields: _Fields, report: ImportReport, name: str) -> list[dict[str, str]]:
    label = fields.label("mes_example")
    text = fields.text("mes_example")
    if not text:
        return []
    parsed = parse_mes_example(text, name)
    if parsed.examples:
        report.map(label, f"examples ({len(parsed.examples)})")
    if not parsed.lossless:
        fields.extras[label] = text
        report.keep(label)
        report.note(
            f"'{label}' did not fit user -> character exchanges completely ({'; '.join(parsed.problems)}); "
            f"the original text is kept under extras.{label}"
        )
    return parsed.examples


def _system_prompt(fields: _Fields, report: ImportReport) -> tuple[str, list[str]]:
    """The composed prompt, and the description/personality/scenario texts it was made from."""
    parts = []
    sources = []
    own = fields.text("system_prompt")
    if own:
        if "{{original}}" in own:
            report.note("'{{original}}' in system_prompt replaced by the default header")
        parts.append(own.replace("{{original}}", DEFAULT_HEADER))
        report.map("system_prompt", "system_prompt (part 1)")
    else:
        parts.append(DEFAULT_HEADER)
        report.note(f"the card has no system_prompt: the persona's prompt starts with '{DEFAULT_HEADER}'")
    for field_name, prefix in PROMPT_PARTS:
        label = fields.label(field_name)
        text = fields.text(field_name)
        if text:
            parts.append(prefix + text)
            sources.append(text)
            report.map(label, f"system_prompt (part {len(parts)})")
    return "\n\n".join(parts), sources


def card_to_persona_data(
    card: RawCard, refs: Mapping[str, set[str]] | None = None
) -> tuple[dict[str, Any], ImportReport]:
    """Persona YAML data for a card, and the report of what went where. Raises ValidationError if no name."""
    refs = refs or {}
    report = ImportReport(card.source, card.format)
    report.notes += card.notes
    fields = _Fields(card, report)

    raw_ext = fields.values.get("extensions")
    restored: dict[str, Any] = {}
    if isinstance(raw_ext, dict) and EXTENSION_KEY in raw_ext:
        raw_ext = dict(raw_ext)
        restored = _restore_extension(raw_ext.pop(EXTENSION_KEY), refs, report)
        if raw_ext:
            fields.values["extensions"] = raw_ext
        else:
            del fields.values["extensions"]

    name_value = fields.take("name")
    if not isinstance(name_value, str) or not name_value.strip():
        raise ValidationError(
            [Issue(card.source, 1, 1, "the card has no character name ('name' is missing, empty or not text)")]
        )
    name = " ".join(name_value.split())
    if len(name) > MAX_NAME:
        fields.keep("name", name_value, f"name is {len(name)} characters, cut to {MAX_NAME}")
        name = name[: MAX_NAME - 1].rstrip() + "…"
    report.map(fields.label("name"), "name")

    data: dict[str, Any] = {"name": name, "description": ""}
    system_prompt, sources = _system_prompt(fields, report)
    data["description"] = restored.pop("description", None) or summary_line(name, *sources)
    if "description" not in {p for _, p in report.mapped}:
        report.note(f"description (the picker line) written from the card: {data['description']!r}")
    data["system_prompt"] = system_prompt
    data.update(_greetings(fields, report))
    examples = _examples(fields, report, name)
    if examples:
        data["examples"] = examples
    phi = fields.text("post_history_instructions")
    if phi:
        if "{{original}}" in phi:
            phi = phi.replace("{{original}}", "").strip()
            report.note("'{{original}}' in post_history_instructions removed (there is no default to include)")
        if phi:
            data["post_history_instructions"] = phi
            report.map("post_history_instructions", "post_history_instructions")
    book = fields.take("character_book")
    if book is not None:
        lorebook, book_extra = map_character_book(book, report)
        if lorebook is not None:
            data["lorebook"] = lorebook
        if book_extra is not None:
            fields.extras["character_book"] = book_extra
    for key in ("role_models", "steering", "guard", "sampling"):
        if key in restored:
            data[key] = restored.pop(key)
    tags = fields.text_list("tags")
    if tags:
        data["tags"] = tags
        report.map("tags", "tags")
    creator_notes = fields.values.get("creator_notes")
    if isinstance(creator_notes, str) and creator_notes.strip() == data["description"]:
        fields.values.pop("creator_notes")
        report.map("creator_notes", "description (same text)")
    fields.rest()
    if fields.macros:
        report.note(f"{fields.macros} legacy <BOT>/<USER> placeholder(s) rewritten as {{{{char}}}}/{{{{user}}}}")
    _top_level(card, fields)
    extras = {**fields.extras, **restored.pop("extras", {})}
    if extras:
        data["extras"] = extras
    return data, report


def _top_level(card: RawCard, fields: _Fields) -> None:
    """V2/V3 cards often repeat V1 fields at the top level for old readers: keep only what differs."""
    differing = {}
    for key, value in card.top_level.items():
        if _is_empty(value) or card.fields.get(key) == value:
            continue
        differing[key] = value
    same = [k for k in card.top_level if k not in differing and not _is_empty(card.top_level[k])]
    if same:
        fields.report.note(f"top-level copies of data fields ({', '.join(same)}) equal the data fields")
    if differing:
        fields.extras["top_level"] = differing
        fields.report.keep("top-level " + ", ".join(differing))

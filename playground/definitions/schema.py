"""Declarative schemas for persona, role-model, trait and guard-policy YAML.

One small spec language serves the validator (with file:line:col issues and
"did you mean" hints) and can be rendered to JSON Schema for editors.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Issue
from .yaml_source import PathKey, YamlDocument

GUARD_ACTIONS = ("flag", "cap", "counter_steer", "regenerate", "block")
GUARD_PHASES = ("prompt", "reply", "both")
GUARD_BASELINES = ("persona", "assistant")
STEER_LIMIT = 2.0


@dataclass(frozen=True)
class Spec:
    """Shape of one YAML value."""

    kind: str  # string | number | integer | boolean | list | map | object
    doc: str = ""
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    items: Spec | None = None  # list items
    values: Spec | None = None  # map values
    key_ref: str | None = None  # map keys must name a known thing of this kind
    ref: str | None = None  # a string must name a known thing of this kind
    fields: Mapping[str, Spec] = field(default_factory=dict)  # object fields
    open: bool = False  # object accepts unknown fields


def _s(doc: str, **kw: Any) -> Spec:
    return Spec("string", doc, **kw)


SAMPLING = Spec(
    "object",
    "Sampling defaults for this persona.",
    fields={
        "temperature": Spec("number", "0 = greedy (deterministic).", minimum=0.0, maximum=2.0),
        "top_p": Spec("number", "Nucleus sampling mass.", minimum=0.0, maximum=1.0),
        "top_k": Spec("integer", "Sample among the k most likely tokens (0 = all).", minimum=0, maximum=1000),
        "max_tokens": Spec("integer", "Longest reply in tokens.", minimum=1, maximum=4096),
        "repeat_penalty": Spec("number", "Penalty for repeating tokens (1 = off).", minimum=0.5, maximum=2.0),
        "seed": Spec("integer", "Random seed.", minimum=0),
    },
)

SIGNAL_RULE = Spec(
    "object",
    "Thresholds in calibrated units (0 = typical assistant, 1 = one standard deviation above).",
    fields={
        "warn": Spec("number", "Show a warning at or above this value.", minimum=-50, maximum=50),
        "act": Spec("number", "Take the action at or above this value.", minimum=-50, maximum=50),
        "action": Spec("string", "What to do when 'act' is reached.", choices=GUARD_ACTIONS),
        "strength": Spec("number", "Counter-steering strength for counter_steer/regenerate.", minimum=0, maximum=2),
        "phase": Spec(
            "string", "When to check: prompt (before generating), reply (per token) or both.", choices=GUARD_PHASES
        ),
    },
)

GUARD = Spec(
    "object",
    "Guardrail policy: which signals are watched and what happens when they spike.",
    fields={
        "signals": Spec("map", "Rules per signal (a trait or persona_drift).", values=SIGNAL_RULE, key_ref="signal"),
        "screen_prompt": Spec("boolean", "Check the last prompt token before generating."),
        "max_retries": Spec("integer", "Bound on regenerate attempts.", minimum=0, maximum=5),
        "refusal": _s("Text that replaces a blocked reply."),
        "baseline": _s(
            "Thresholds count from the persona's own typical readouts (persona) or from the plain assistant's.",
            choices=GUARD_BASELINES,
        ),
        "window": Spec("integer", "Per-token checks use the mean of the last N tokens.", minimum=1, maximum=32),
    },
)

EXAMPLE = Spec(
    "object",
    "One few-shot exchange.",
    fields={
        "user": _s("What the user says.", required=True),
        "assistant": _s("The in-character reply.", required=True),
    },
)

_KEYS = Spec("list", "Words that trigger the entry when they appear in the recent conversation.", items=_s("A key."))

LORE_ENTRY = Spec(
    "object",
    "One lorebook entry: text inserted into the prompt when one of its keys comes up.",
    fields={
        "keys": _KEYS,
        "content": _s("Text inserted into the system message when the entry fires."),
        "secondary_keys": Spec(
            "list", "With 'selective': one of these must also appear.", items=_s("A secondary key.")
        ),
        "selective": Spec("boolean", "Require a secondary key as well as a key."),
        "constant": Spec("boolean", "Always insert, whatever the conversation says."),
        "enabled": Spec("boolean", "false = keep the entry but never insert it."),
        "case_sensitive": Spec("boolean", "Match keys with exact case (default: ignore case)."),
        "use_regex": Spec("boolean", "Keys are regular expressions (/pattern/flags accepted)."),
        "insertion_order": Spec("integer", "Lower values are inserted first."),
        "priority": Spec("integer", "When over the token budget, lower priorities are left out first."),
        "position": _s("Insert before or after the persona's own prompt.", choices=("before_char", "after_char")),
        "name": _s("A label for the entry."),
        "comment": _s("A note for editors; never sent to the model."),
        "extras": Spec("object", "Imported entry fields that have no home in this schema.", open=True),
    },
)

LOREBOOK = Spec(
    "object",
    "Lorebook (character-card world info): entries inserted when their keys appear in the conversation.",
    fields={
        "name": _s("Lorebook name."),
        "description": _s("What the lorebook covers."),
        "scan_depth": Spec("integer", "How many recent messages are scanned for keys (default 4).", minimum=1),
        "token_budget": Spec("integer", "Most tokens of lore inserted per prompt.", minimum=1),
        "recursive_scanning": Spec("boolean", "Inserted entries' text can trigger further entries."),
        "entries": Spec("list", "The entries.", required=True, items=LORE_ENTRY),
        "extras": Spec("object", "Imported lorebook fields that have no home in this schema.", open=True),
    },
)

PERSONA = Spec(
    "object",
    "A persona: who is talking, with what values and habits.",
    fields={
        "name": _s("Display name.", required=True, max_length=80),
        "description": _s("One line shown in the persona picker.", required=True, max_length=400),
        "system_prompt": _s("Instructions that select the character.", required=True),
        "greeting": _s("First message shown in the chat."),
        "alternate_greetings": Spec("list", "Other possible first messages.", items=_s("A greeting.")),
        "examples": Spec("list", "Few-shot dialogue placed before the conversation.", items=EXAMPLE),
        "post_history_instructions": _s(
            "Instructions sent after the conversation, just before each reply (character-card convention)."
        ),
        "lorebook": LOREBOOK,
        "role_models": Spec(
            "list", "Role models composed into the system prompt.", items=_s("Role-model name.", ref="role_model")
        ),
        "steering": Spec(
            "map",
            "Default steering: trait -> strength (0 off, 1 strong but coherent, negative suppresses).",
            values=Spec("number", "Steering strength.", minimum=-STEER_LIMIT, maximum=STEER_LIMIT),
            key_ref="trait",
        ),
        "guard": GUARD,
        "sampling": SAMPLING,
        "tags": Spec("list", "Free-form labels.", items=_s("A tag.")),
        "extras": Spec("object", "Imported fields that have no home in this schema.", open=True),
    },
)

ROLE_MODEL = Spec(
    "object",
    "A positive archetype composed into personas.",
    fields={
        "name": _s("Display name.", required=True, max_length=80),
        "description": _s("One line.", required=True),
        "principles": Spec("list", "Principles added to the system prompt.", required=True, min_items=1, items=_s("")),
    },
)

_STR_LIST = Spec("list", "", required=True, min_items=1, items=_s(""))

TRAIT = Spec(
    "object",
    "A character trait: how to elicit and suppress it, and questions to extract it with.",
    fields={
        "name": _s("Trait id; equals the file name.", required=True),
        "description": _s("What the trait looks like in a reply.", required=True),
        "eliciting": Spec(
            "list", "System instructions that elicit the trait.", required=True, min_items=1, items=_s("")
        ),
        "suppressing": Spec(
            "list", "System instructions that suppress it (paired by index).", required=True, min_items=1, items=_s("")
        ),
        "questions": Spec(
            "object",
            "User messages for extraction and held-out evaluation.",
            required=True,
            fields={"extraction": _STR_LIST, "evaluation": _STR_LIST},
        ),
        "judge": Spec(
            "object",
            "Anchor replies for the independent embedding judge.",
            fields={"positive": _STR_LIST, "negative": _STR_LIST},
        ),
    },
)

POLICY = Spec(
    "object",
    "Global guardrail policy.",
    fields={**GUARD.fields, "name": _s("Policy name."), "description": _s("What this policy is for.")},
)

_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "list": "a list",
    "map": "a mapping",
    "object": "a mapping",
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    return isinstance(value, dict)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def did_you_mean(word: str, options: list[str] | set[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _known(refs: Mapping[str, set[str]], kind: str) -> set[str] | None:
    return refs.get(kind)


class _Checker:
    def __init__(self, doc: YamlDocument, refs: Mapping[str, set[str]]):
        self.doc = doc
        self.refs = refs
        self.issues: list[Issue] = []

    def add(self, path: PathKey, message: str, *, key: bool = False) -> None:
        self.issues.append(self.doc.issue(path, message, key=key))

    def check(self, spec: Spec, value: Any, path: PathKey, label: str) -> None:
        if not _type_ok(spec.kind, value):
            self.add(path, f"'{label}' must be {_TYPE_NAMES[spec.kind]}, got {_describe(value)}")
            return
        if spec.kind in ("number", "integer"):
            if spec.minimum is not None and value < spec.minimum:
                self.add(path, f"'{label}' is {value}; it must be at least {spec.minimum:g}")
            if spec.maximum is not None and value > spec.maximum:
                self.add(path, f"'{label}' is {value}; it must be at most {spec.maximum:g}")
        elif spec.kind == "string":
            self._check_string(spec, value, path, label)
        elif spec.kind == "list":
            if spec.min_items and len(value) < spec.min_items:
                self.add(path, f"'{label}' needs at least {spec.min_items} item(s)")
            if spec.items is not None:
                for i, item in enumerate(value):
                    self.check(spec.items, item, path + (i,), f"{label}[{i}]")
        elif spec.kind == "map":
            self._check_map(spec, value, path, label)
        elif spec.kind == "object":
            self._check_object(spec, value, path, label)

    def _check_string(self, spec: Spec, value: str, path: PathKey, label: str) -> None:
        if spec.required and not value.strip():
            self.add(path, f"'{label}' must not be empty")
        if spec.max_length is not None and len(value) > spec.max_length:
            self.add(path, f"'{label}' is {len(value)} characters; keep it under {spec.max_length}")
        if spec.choices is not None and value not in spec.choices:
            self.add(
                path,
                f"'{label}' is '{value}'; choose one of {', '.join(spec.choices)}{did_you_mean(value, spec.choices)}",
            )
        if spec.ref is not None:
            known = _known(self.refs, spec.ref)
            if known is not None and value not in known:
                listing = ", ".join(sorted(known)) or "none"
                self.add(
                    path,
                    f"unknown {spec.ref.replace('_', ' ')} '{value}'{did_you_mean(value, known)} (known: {listing})",
                )

    def _check_map(self, spec: Spec, value: dict, path: PathKey, label: str) -> None:
        known = _known(self.refs, spec.key_ref) if spec.key_ref else None
        for key, item in value.items():
            key_s = str(key)
            if known is not None and key_s not in known:
                listing = ", ".join(sorted(known)) or "none"
                self.add(
                    path + (key_s,),
                    f"unknown {spec.key_ref} '{key_s}' in '{label}'{did_you_mean(key_s, known)} (known: {listing})",
                    key=True,
                )
                continue
            if spec.values is not None:
                self.check(spec.values, item, path + (key_s,), f"{label}.{key_s}")

    def _check_object(self, spec: Spec, value: dict, path: PathKey, label: str) -> None:
        prefix = f"{label}." if label else ""
        for name, sub in spec.fields.items():
            if sub.required and name not in value:
                self.add(path, f"missing required field '{prefix}{name}' ({sub.doc.rstrip('.').lower() or sub.kind})")
        for key, item in value.items():
            key_s = str(key)
            sub = spec.fields.get(key_s)
            if sub is None:
                if not spec.open:
                    hint = did_you_mean(key_s, list(spec.fields))
                    allowed = "" if hint else f" (allowed: {', '.join(spec.fields)})"
                    self.add(path + (key_s,), f"unknown field '{prefix}{key_s}'{hint}{allowed}", key=True)
                continue
            self.check(sub, item, path + (key_s,), f"{prefix}{key_s}")


def validate(doc: YamlDocument, spec: Spec, refs: Mapping[str, set[str]] | None = None) -> list[Issue]:
    """Check ``doc.data`` against ``spec``; ``refs`` lists known names per reference kind."""
    if doc.data is None:
        return [
            doc.issue(
                (),
                "file is empty; expected a mapping with at least: "
                + ", ".join(n for n, s in spec.fields.items() if s.required),
            )
        ]
    checker = _Checker(doc, refs or {})
    checker.check(spec, doc.data, (), "")
    return sorted(checker.issues, key=lambda i: (i.line, i.column))


def to_json_schema(spec: Spec) -> dict[str, Any]:
    """Render a spec as JSON Schema (draft 2020-12)."""
    out: dict[str, Any] = {}
    if spec.doc:
        out["description"] = spec.doc
    if spec.kind in ("string", "number", "integer", "boolean"):
        out["type"] = spec.kind
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
        if spec.choices:
            out["enum"] = list(spec.choices)
        if spec.max_length:
            out["maxLength"] = spec.max_length
        if spec.kind == "string" and spec.required:
            out["pattern"] = "\\S"  # not empty or blank, as the validator demands
    elif spec.kind == "list":
        out["type"] = "array"
        if spec.items is not None:
            out["items"] = to_json_schema(spec.items)
        if spec.min_items:
            out["minItems"] = spec.min_items
    elif spec.kind == "map":
        out["type"] = "object"
        if spec.values is not None:
            out["additionalProperties"] = to_json_schema(spec.values)
    else:
        out["type"] = "object"
        out["properties"] = {k: to_json_schema(v) for k, v in spec.fields.items()}
        required = [k for k, v in spec.fields.items() if v.required]
        if required:
            out["required"] = required
        out["additionalProperties"] = spec.open
    return out


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def document_json_schema(spec: Spec, title: str) -> dict[str, Any]:
    """A complete JSON Schema document for one kind of definition file (editors: yaml-language-server)."""
    return {"$schema": JSON_SCHEMA_DIALECT, "title": title, **to_json_schema(spec)}

"""What a user asks to steer: ``{trait: strength}`` from CLI flags, a text field or a JSON object.

Three entry points read the same thing in three spellings: ``--steer humorous=0.8`` (repeatable; ranking's
``--target humorous=1`` uses the same ``TRAIT=VALUE`` form), the lab's ``"humorous=1, evil=-0.5"`` text
field, and the HTTP API's ``steer_json`` object. Parsing checks the form and that each value is a finite
number; whether the trait exists and the strength is in range is checked where vectors are at hand
(``probes.build_steering``). Strength 0 means exactly no steering: ``active_strengths`` is the one place
that drops it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from ..errors import PlaygroundError


def split_assignments(text: str) -> list[str]:
    """``"humorous=1, evil=-1"`` (commas or semicolons) -> ``["humorous=1", "evil=-1"]``."""
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


def parse_assignments(
    items: Sequence[str], flag: str = "--steer", noun: str = "strength", example: str = "humorous=0.8"
) -> dict[str, float]:
    """``TRAIT=VALUE`` items (as given to ``flag``) -> {trait: value}; errors name the flag and the item."""
    out: dict[str, float] = {}
    for item in items:
        trait, sep, value = item.partition("=")
        if not sep or not trait.strip():
            raise PlaygroundError(f"{flag} {item!r}: expected TRAIT={noun.upper()}, e.g. {flag} {example}")
        try:
            out[trait.strip()] = float(value)
        except ValueError:
            raise PlaygroundError(f"{flag} {item!r}: {noun} '{value}' is not a number") from None
    return out


def parse_steer_args(items: Sequence[str]) -> dict[str, float]:
    """``--steer TRAIT=STRENGTH`` options -> {trait: strength}."""
    return parse_assignments(items)


def parse_steer_json(text: str | None) -> dict[str, float]:
    """Parse the API's ``steer_json`` argument: a JSON object mapping trait -> strength."""
    if text is None or not str(text).strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlaygroundError(f"steer_json: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise PlaygroundError('steer_json must be a JSON object like {"humorous": 0.8}')
    out: dict[str, float] = {}
    for key, strength in value.items():
        if isinstance(strength, bool) or not isinstance(strength, int | float) or not math.isfinite(strength):
            raise PlaygroundError(f"steer_json: strength for '{key}' must be a number, got {strength!r}")
        out[str(key)] = float(strength)
    return out


def active_strengths(strengths: Mapping[str, float] | None) -> dict[str, float]:
    """The strengths that steer at all, as floats: strength 0 (or none) is exactly no steering."""
    return {k: float(v) for k, v in (strengths or {}).items() if v}

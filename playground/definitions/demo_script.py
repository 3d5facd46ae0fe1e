"""A talk's demo script (``personas/demo/talk.yml``): prepared steps a speaker clicks through, each a persona, a
message, steering, a fixed seed and sampling, so a talk gives the same replies at every rehearsal.

``load_demo`` reads and checks the file (every problem at once, each with its line); ``DemoStep.controls`` turns
a step into the Chat tab's slider values. The UI only adapts these (``playground.ui.chat_tab.demo``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Issue, ValidationError
from ..paths import SHIPPED_PERSONAS
from .schema import STEER_LIMIT, did_you_mean
from .yaml_source import YamlDocument, load_yaml_file

DEMO_FILE = SHIPPED_PERSONAS / "demo" / "talk.yml"
MAX_MESSAGE_CHARS = 2000
TEMPERATURE_RANGE = (0.0, 1.5)  # the Chat tab's sampling sliders
MAX_TOKENS_RANGE = (8, 512)


@dataclass(frozen=True)
class DemoStep:
    title: str
    persona: str  # a persona id of the catalog
    message: str
    steering: dict[str, float] = field(default_factory=dict)  # {} = unsteered
    seed: int = 0
    temperature: float = 0.6
    max_tokens: int = 96
    say: str = ""  # a line for the speaker

    def controls(self, traits: Sequence[str]) -> list[float]:
        """The Chat tab's slider values for this step: steering per trait (0 where unset), temperature, max tokens."""
        return [float(self.steering.get(t, 0.0)) for t in traits] + [float(self.temperature), float(self.max_tokens)]

    def describe(self) -> str:
        steer = ", ".join(f"{t} {v:+g}" for t, v in self.steering.items()) or "unsteered"
        return f"persona `{self.persona}` · {steer} · seed {self.seed} · temperature {self.temperature:g}"


@dataclass(frozen=True)
class DemoScript:
    name: str
    steps: tuple[DemoStep, ...]

    def choices(self) -> list[tuple[str, int]]:
        """(label, index) per step, for a dropdown."""
        return [(f"{i + 1}. {s.title}", i) for i, s in enumerate(self.steps)]

    def step(self, index: int | None) -> DemoStep:
        """The step at ``index`` (clamped into range; None = the first)."""
        i = 0 if index is None else min(max(int(index), 0), len(self.steps) - 1)
        return self.steps[i]

    def next_index(self, index: int | None) -> int:
        """The step after ``index``, back to the first after the last (None = the first)."""
        return 0 if index is None else (int(index) + 1) % len(self.steps)


def load_demo(
    path: str | Path = DEMO_FILE, personas: Sequence[str] | None = None, traits: Sequence[str] | None = None
) -> DemoScript:
    """Read a demo script; with ``personas``/``traits`` given, every step's persona and steered traits must be
    among them. Raises ``ValidationError`` listing every problem found."""
    doc = load_yaml_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    issues: list[Issue] = []
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        issues.append(doc.issue(("steps",), "'steps' must be a non-empty list of steps"))
        raw_steps = []
    steps = []
    for i, raw in enumerate(raw_steps):
        step = _step(doc, i, raw, personas, traits, issues)
        if step is not None:
            steps.append(step)
    if issues:
        raise ValidationError(issues)
    return DemoScript(str(data.get("name") or Path(path).stem), tuple(steps))


def _step(
    doc: YamlDocument,
    i: int,
    raw: Any,
    personas: Sequence[str] | None,
    traits: Sequence[str] | None,
    issues: list[Issue],
) -> DemoStep | None:
    """One step, with its problems appended to ``issues`` (None when it can't be built)."""
    where = ("steps", i)
    if not isinstance(raw, dict):
        issues.append(doc.issue(where, f"step {i + 1} must be a mapping"))
        return None
    before = len(issues)
    for key in ("title", "persona", "message"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            issues.append(doc.issue((*where, key), f"step {i + 1}: '{key}' must be a non-empty text"))
    message = str(raw.get("message") or "")
    if len(message) > MAX_MESSAGE_CHARS:
        issues.append(doc.issue((*where, "message"), f"step {i + 1}: message over {MAX_MESSAGE_CHARS} characters"))
    persona = str(raw.get("persona") or "")
    if personas is not None and persona and persona not in personas:
        hint = did_you_mean(persona, list(personas))
        issues.append(doc.issue((*where, "persona"), f"step {i + 1}: unknown persona '{persona}'{hint}"))
    steering = raw.get("steering") or {}
    if not isinstance(steering, dict):
        issues.append(doc.issue((*where, "steering"), f"step {i + 1}: 'steering' must map traits to strengths"))
        steering = {}
    for trait, value in steering.items():
        at = (*where, "steering", trait)
        if traits is not None and trait not in traits:
            issues.append(doc.issue(at, f"step {i + 1}: unknown trait '{trait}'{did_you_mean(str(trait), traits)}"))
        if not _number(value) or not -STEER_LIMIT <= value <= STEER_LIMIT:
            issues.append(doc.issue(at, f"step {i + 1}: strength of '{trait}' must be a number in ±{STEER_LIMIT:g}"))
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        issues.append(doc.issue((*where, "seed"), f"step {i + 1}: 'seed' must be a whole number >= 0 (fixed replies)"))
    for key, (lo, hi), default in (("temperature", TEMPERATURE_RANGE, 0.6), ("max_tokens", MAX_TOKENS_RANGE, 96)):
        value = raw.get(key, default)
        if not _number(value) or not lo <= value <= hi:
            issues.append(doc.issue((*where, key), f"step {i + 1}: '{key}' must be a number in {lo:g}..{hi:g}"))
    if len(issues) > before:
        return None
    return DemoStep(
        title=raw["title"].strip(),
        persona=persona,
        message=message.strip(),
        steering={str(t): float(v) for t, v in steering.items()},
        seed=int(seed),
        temperature=float(raw.get("temperature", 0.6)),
        max_tokens=int(raw.get("max_tokens", 96)),
        say=str(raw.get("say") or "").strip(),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

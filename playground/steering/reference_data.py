"""The probes' training-side prompt files (``personas/calibration/``).

``reference.yml``: ``everyday``, what a plain assistant is asked day to day (greetings, one-word answers, long
explanations), whose neutral replies define probe zero; ``strength_questions``, the questions strength 1 is
validated on. ``probe_training.yml``: per trait, many more eliciting instructions and natural characters than the
trait file's five pairs, and the questions they are asked, so a probe learns the trait rather than one wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..definitions.text_sets import TraitPrompts, read_text_sets, read_trait_prompts
from ..paths import SHIPPED_PERSONAS

REFERENCE_FILE = SHIPPED_PERSONAS / "calibration" / "reference.yml"
PROBE_TRAINING_FILE = SHIPPED_PERSONAS / "calibration" / "probe_training.yml"


@dataclass(frozen=True)
class ReferencePrompts:
    everyday: tuple[str, ...]
    strength_questions: tuple[str, ...]


@lru_cache(maxsize=4)
def load_reference(path: Path = REFERENCE_FILE) -> ReferencePrompts:
    sets = read_text_sets(path, ("everyday", "strength_questions"))
    return ReferencePrompts(sets["everyday"], sets["strength_questions"])


@dataclass(frozen=True)
class ProbeTrainingPrompts:
    questions: tuple[str, ...]
    traits: dict[str, TraitPrompts]

    def texts(self) -> list[str]:
        return [*self.questions, *(s for t in self.traits.values() for s in t.systems)]

    def plan(self, trait: str, per_system: int) -> list[tuple[int, str, str]]:
        """(system index, system, question) of a trait's replies: system k answers ``per_system`` questions,
        taken in turn so every question is used about equally often across the trait's systems."""
        systems = self.traits[trait].systems
        n = len(self.questions)
        return [
            (k, s, self.questions[(k * per_system + i) % n]) for k, s in enumerate(systems) for i in range(per_system)
        ]


@lru_cache(maxsize=4)
def load_probe_training(path: Path = PROBE_TRAINING_FILE) -> ProbeTrainingPrompts:
    sets = read_text_sets(path, ("questions",))
    return ProbeTrainingPrompts(sets["questions"], read_trait_prompts(path))

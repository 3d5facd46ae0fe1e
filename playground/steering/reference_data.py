"""The probes' training-side reference prompts (``personas/calibration/reference.yml``).

``everyday``: what a plain assistant is asked day to day (greetings, one-word answers, long explanations); the
neutral replies to them define probe zero. ``strength_questions``: the questions strength 1 is validated on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..definitions.text_sets import read_text_sets
from ..paths import SHIPPED_PERSONAS

REFERENCE_FILE = SHIPPED_PERSONAS / "calibration" / "reference.yml"


@dataclass(frozen=True)
class ReferencePrompts:
    everyday: tuple[str, ...]
    strength_questions: tuple[str, ...]


@lru_cache(maxsize=4)
def load_reference(path: Path = REFERENCE_FILE) -> ReferencePrompts:
    sets = read_text_sets(path, ("everyday", "strength_questions"))
    return ReferencePrompts(sets["everyday"], sets["strength_questions"])

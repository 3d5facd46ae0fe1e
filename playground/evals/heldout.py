"""The held-out trait evaluation set (``personas/heldout/traits_eval.yml``).

Written apart from the extraction data and never read while writing it: per trait, eliciting instructions
and natural persona prompts that imply the trait without naming it; questions shared by every trait; and
everyday exchanges for the "zero means a typical assistant" check. ``tests/test_heldout_overlap.py`` checks
that no item shares a word 6-gram with any training-side text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..definitions.text_sets import read_nested_text_sets, read_text_sets
from ..paths import SHIPPED_PERSONAS

HELDOUT_FILE = SHIPPED_PERSONAS / "heldout" / "traits_eval.yml"


@dataclass(frozen=True)
class TraitPrompts:
    instructions: tuple[str, ...]  # ask for the trait explicitly
    personas: tuple[str, ...]  # a character whose nature implies it

    @property
    def systems(self) -> tuple[str, ...]:
        return self.instructions + self.personas


@dataclass(frozen=True)
class HeldOutTraits:
    questions: tuple[str, ...]
    everyday: tuple[str, ...]
    traits: dict[str, TraitPrompts]

    def texts(self) -> list[str]:
        out = [*self.questions, *self.everyday]
        for t in self.traits.values():
            out += [*t.instructions, *t.personas]
        return out


def load_heldout(path: Path = HELDOUT_FILE) -> HeldOutTraits:
    sets = read_text_sets(path, ("questions", "everyday"))
    traits = read_nested_text_sets(path, "traits", ("instructions", "personas"))
    return HeldOutTraits(
        sets["questions"],
        sets["everyday"],
        {name: TraitPrompts(v["instructions"], v["personas"]) for name, v in traits.items()},
    )

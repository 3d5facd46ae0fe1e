"""The held-out trait evaluation sets (``personas/heldout/traits_eval*.yml``).

Each is written apart from the extraction data and never read while writing it: per trait, eliciting instructions
and natural persona prompts that imply the trait without naming it; questions shared by every trait; and
everyday exchanges for the "zero means a typical assistant" check. ``tests/test_heldout_overlap.py`` checks
that no item shares a word 6-gram with any training-side text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..definitions.text_sets import TraitPrompts, read_text_sets, read_trait_prompts
from ..paths import SHIPPED_PERSONAS

HELDOUT_DIR = SHIPPED_PERSONAS / "heldout"
# Version 2 is the default: version 1 was looked at while the probes' training data was widened (docs/TRAITS_EVAL.md).
HELDOUT_FILE = HELDOUT_DIR / "traits_eval_v2.yml"
HELDOUT_V1_FILE = HELDOUT_DIR / "traits_eval.yml"


def heldout_files() -> list[Path]:
    """Every held-out trait set in the project (the overlap test checks them all)."""
    return sorted(HELDOUT_DIR.glob("traits_eval*.yml"))


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
    return HeldOutTraits(sets["questions"], sets["everyday"], read_trait_prompts(path))

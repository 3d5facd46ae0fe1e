"""Is the screen's training data held out from every set it is evaluated on?

A training prompt (``personas/guard/screening.yml``) leaks when it shares a word 8-gram (case and punctuation
ignored) with any evaluation text: the red-team and XSTest sets under ``../shared/data`` and the project's
held-out benign prompts (``personas/guard/benign_eval.yml``). A model name in a training prompt leaks too: the
evaluation fills a model name into every DAN prompt, so a name seen only in training hijacks is a label-correlated
token. ``tests/test_guard_leakage.py`` asserts there is none; ``eval guard`` prints the check in its report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..definitions.words import word_ngrams
from ..guard.screening_data import EVAL_FILE, TRAIN_FILE, ScreenPrompt, load_screening_data
from ..paths import REPO_ROOT
from .guard_data import evaluation_texts

LEAK_N = 8
MODEL_NAMES = ("smollm", "chatgpt", "gpt", "openai", "llama", "gemma", "claude", "qwen", "mistral", "gemini")
_NAME = re.compile(r"\b(" + "|".join(MODEL_NAMES) + r")", re.IGNORECASE)


@dataclass(frozen=True)
class Leak:
    item: str  # training prompt id
    where: str  # file:line
    sources: dict[str, int]  # evaluation source -> word n-grams shared with it
    model_names: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = [f"{n} {LEAK_N}-grams with {s}" for s, n in sorted(self.sources.items())]
        parts += [f"model name '{m}'" for m in self.model_names]
        return f"{self.item} ({self.where}): " + "; ".join(parts)


def find_leaks(train: Sequence[ScreenPrompt], evaluation: Mapping[str, Iterable[str]], n: int = LEAK_N) -> list[Leak]:
    """Every training prompt that shares a word ``n``-gram with an evaluation source or names a model."""
    index: dict[tuple[str, ...], set[str]] = {}
    for source, texts in evaluation.items():
        for text in texts:
            for gram in word_ngrams(text, n):
                index.setdefault(gram, set()).add(source)
    out = []
    for p in train:
        hits: Counter[str] = Counter()
        for gram in word_ngrams(p.text, n):
            hits.update(index.get(gram, ()))
        names = tuple(sorted({m.lower() for m in _NAME.findall(p.text)}))
        if hits or names:
            out.append(Leak(p.id, p.where, dict(hits), names))
    return out


def guard_leakage() -> dict[str, Any]:
    """The check on the shipped training file against every evaluation set (what the report prints)."""
    train = load_screening_data(TRAIN_FILE).prompts
    evaluation = evaluation_texts()
    evaluation["benign_eval.yml"] = [p.text for p in load_screening_data(EVAL_FILE, require_hijack=False).prompts]
    leaks = find_leaks(train, evaluation)
    return {
        "n": LEAK_N,
        "training_prompts": len(train),
        "evaluation_texts": {k: len(v) for k, v in evaluation.items()},
        "flagged": [str(leak).replace(f"{REPO_ROOT}/", "") for leak in leaks],
    }

"""Word n-gram overlap between training-side and evaluation-side texts: the automated "held out" check.

Texts are compared as lower-case word sequences (letters, digits and apostrophes; punctuation ignored), so a
paraphrase that copies a run of ``n`` words is caught whatever its punctuation or capitals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..definitions.words import word_ngrams


@dataclass(frozen=True)
class Overlap:
    train_source: str
    eval_source: str
    ngram: str

    def __str__(self) -> str:
        return f"'{self.ngram}' occurs in {self.train_source} and in {self.eval_source}"


def ngram_overlaps(train: Mapping[str, Iterable[str]], held_out: Mapping[str, Iterable[str]], n: int) -> list[Overlap]:
    """Every word ``n``-gram shared by a training text and an evaluation text.

    ``train`` and ``held_out`` map a source name (e.g. ``personas/traits/evil.yaml``) to its texts."""
    index: dict[tuple[str, ...], str] = {}
    for source, texts in train.items():
        for text in texts:
            for gram in word_ngrams(text, n):
                index.setdefault(gram, source)
    found = []
    for source, texts in held_out.items():
        for text in texts:
            for gram in sorted(word_ngrams(text, n) & index.keys()):
                found.append(Overlap(index[gram], source, " ".join(gram)))
    return found

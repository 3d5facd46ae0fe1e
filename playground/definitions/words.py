"""Words as the project's text checks see them: lower-case runs of letters, digits and apostrophes.

Shared by the held-out overlap checks (``evals/overlap.py``, ``evals/guard_leakage.py``) and the degenerate-reply
rule (``steering/degenerate.py``), so "the same words" means the same thing everywhere.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}

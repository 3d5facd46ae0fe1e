"""When is a steered reply degenerate? One rule for the strength scale and its evaluation.

A reply is degenerate when any of these holds (``reasons`` names which):

- ``loop``: more than 25% of its 3-grams of tokens already occurred earlier in it;
- ``short``: fewer than 5 tokens (a short coherent quip of five tokens or more is fine);
- ``symbols``: its share of letters is below 75% of the unsteered reply's to the same question
  ("1. 1. 1. 2. 3." scores far lower than prose);
- ``echo``: it repeats the user's message back (the message's words appear as a run in the reply), or it starts
  writing the user's next turn ("User:", "You:").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..definitions.words import words as _words
from .strength import letter_share, repeated_ngram_share

MAX_LOOP = 0.25
MIN_TOKENS = 5
MIN_LETTER_RATIO = 0.75
_TURN = re.compile(r"(^|\n|[.!?]\s)\s*(user|you|human)\s*:", re.IGNORECASE)


def echoes(question: str, reply: str) -> bool:
    """The reply repeats the question (its first 8 words, or all of a shorter one of at least 4) or writes a
    user turn."""
    if _TURN.search(reply):
        return True
    q = _words(question)
    if len(q) < 4:
        return False
    run = " ".join(q[:8])
    return f" {run} " in f" {' '.join(_words(reply))} "


def reasons(tokens: Sequence[int], text: str, question: str, baseline_letters: float) -> list[str]:
    """Why a reply is degenerate (empty when it is not)."""
    out = []
    if repeated_ngram_share(tokens) > MAX_LOOP:
        out.append("loop")
    if len(tokens) < MIN_TOKENS:
        out.append("short")
    if letter_share(text) < MIN_LETTER_RATIO * baseline_letters:
        out.append("symbols")
    if echoes(question, text):
        out.append("echo")
    return out

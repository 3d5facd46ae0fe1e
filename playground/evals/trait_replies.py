"""The held-out replies the trait evaluation reads: generated once per model and held-out file, then re-read.

Per trait, every held-out question is answered under one of the trait's held-out systems in turn (its eliciting
instructions, then its natural personas); the neutral assistant answers every question; the shipped assistant
persona answers the everyday prompts. All greedy, 40 tokens. The token ids are cached in the user cache (keyed by
model, file content and length), so comparing two sets of probes reads the very same text.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from ..backends.base import Backend, text_of
from ..definitions.personas import Catalog, compose_system_prompt
from ..files import write_atomic
from ..steering.extraction import NEUTRAL_SYSTEM
from ..steering.extraction_replies import generate_reply, prompt_for
from ..steering.reply_reading import Readings, read_replies
from ..steering.store import user_cache_dir
from .heldout import HELDOUT_FILE, HeldOutTraits

MAX_TOKENS = 40


@dataclass(frozen=True)
class Item:
    group: str  # "elicited", "neutral" or "everyday"
    trait: str | None  # the trait an elicited reply was asked for
    kind: str  # "instruction", "persona", "neutral" or "everyday"
    system: str
    question: str
    tokens: list[int]
    text: str


def plan(
    held: HeldOutTraits, n_questions: int, n_everyday: int | None = None, traits: Sequence[str] | None = None
) -> list[tuple[str, str | None, str, str, str]]:
    """(group, trait, kind, system, question) of every held-out reply (of ``traits``, default all), in order."""
    questions = held.questions[:n_questions]
    out: list[tuple[str, str | None, str, str, str]] = []
    for trait, prompts in held.traits.items():
        if traits is not None and trait not in traits:
            continue
        systems = [("instruction", s) for s in prompts.instructions] + [("persona", s) for s in prompts.personas]
        for j, q in enumerate(questions):
            kind, system = systems[j % len(systems)]
            out.append(("elicited", trait, kind, system, q))
    out += [("neutral", None, "neutral", NEUTRAL_SYSTEM, q) for q in questions]
    assistant = compose_system_prompt(Catalog().persona("assistant"))
    out += [("everyday", None, "everyday", assistant, q) for q in held.everyday[:n_everyday]]
    return out


def heldout_replies(
    backend: Backend,
    held: HeldOutTraits,
    n_questions: int,
    *,
    n_everyday: int | None = None,
    traits: Sequence[str] | None = None,
    source: Path = HELDOUT_FILE,
    progress: bool = True,
) -> list[Item]:
    """Every held-out reply (cached per model, file, length and trait selection)."""
    todo = plan(held, n_questions, n_everyday, traits)
    sizes = f"{backend.model_id}\x00{MAX_TOKENS}\x00{n_questions}" + ("" if n_everyday is None else f"\x00{n_everyday}")
    sizes += "" if traits is None else "\x00" + ",".join(sorted(traits))
    digest = hashlib.sha256(source.read_bytes() + sizes.encode())
    cache = user_cache_dir() / backend.model_id / f"heldout-replies-{digest.hexdigest()[:16]}.json"
    if cache.is_file():
        tokens = json.loads(cache.read_text(encoding="utf-8"))
    else:
        bar = tqdm(todo, desc="held-out replies", disable=not progress, file=sys.stderr)
        tokens = [generate_reply(backend, system, q, MAX_TOKENS).tokens for _, _, _, system, q in bar]
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, json.dumps(tokens).encode(), overwrite=True)
    return [
        Item(g, t, k, s, q, list(tok), text_of(backend, tok)) for (g, t, k, s, q), tok in zip(todo, tokens, strict=True)
    ]


def read_items(backend: Backend, items: list[Item], layers: list[int], progress: bool = True) -> Readings:
    """Response-mean and last-prompt readings of every item at ``layers``."""
    pairs = [(prompt_for(backend, it.system, it.question), it.tokens) for it in items]
    return read_replies(backend, pairs, layers, desc="read held-out replies", progress=progress)


def item_json(item: Item) -> dict:
    return asdict(item)

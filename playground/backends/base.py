"""The backend protocol every model runtime implements.

Layer convention (the only one in the library): a layer index is a 0-based *block* index, and the
activation of layer ``l`` is the residual stream at the output of block ``l`` — HF
``hidden_states[l + 1]``, llama.cpp ``l_out-l``. Backends convert at their own edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..chat_template import ChatTemplate
from ..personas import Sampling


@dataclass(frozen=True)
class Steering:
    """What to add to the residual stream during one generation call.

    ``additions[l]`` is a (d_model,) float32 vector added to the output of block ``l`` at every position
    (prompt included). Empty means no steering.
    """

    additions: dict[int, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(np.any(v) for v in self.additions.values())

    def fingerprint(self) -> str:
        h = hashlib.sha1()
        for layer in sorted(self.additions):
            if not np.any(self.additions[layer]):
                continue  # a zero vector is no steering at all
            h.update(layer.to_bytes(4, "little"))
            h.update(np.ascontiguousarray(self.additions[layer], dtype=np.float32).tobytes())
        return h.hexdigest()

    def combined(self, other: Steering) -> Steering:
        out = {k: np.asarray(v, dtype=np.float32).copy() for k, v in self.additions.items()}
        for k, v in other.additions.items():
            out[k] = out.get(k, 0) + np.asarray(v, dtype=np.float32)
        return Steering(out)


@dataclass(frozen=True)
class Step:
    """One generated token, plus (when asked) the residual activations that *chose* it.

    ``hidden[l]`` is the (d_model,) activation of layer ``l`` at the position whose logits produced
    ``token`` — for the first token that is the last prompt token.
    """

    token: int
    hidden: dict[int, np.ndarray] | None = None


@runtime_checkable
class Backend(Protocol):
    name: str
    model_id: str
    n_ctx: int
    n_layers: int
    d_model: int
    template: ChatTemplate

    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text`` with special tokens parsed (the rendered template holds them)."""
        ...

    def token_bytes(self, token: int) -> bytes:
        """Raw bytes of one token (may be a partial UTF-8 sequence)."""
        ...

    def is_end(self, token: int) -> bool:
        """True for end-of-turn / end-of-generation tokens."""
        ...

    def stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        steering: Steering | None = None,
        capture: Sequence[int] = (),
    ) -> Iterator[Step]:
        """Generate after ``prompt`` one token at a time until an end token or ``sampling.max_tokens``.

        Steering applies only inside this call. With ``capture``, every Step carries ``hidden``.
        """
        ...

    def hidden_states(
        self, tokens: list[int], layers: Sequence[int], *, steering: Steering | None = None
    ) -> dict[int, np.ndarray]:
        """Teacher-forced activations: layer -> (len(tokens), d_model) float32, one row per position."""
        ...

    def token_logprobs(self, tokens: list[int], start: int, *, steering: Steering | None = None) -> np.ndarray:
        """Teacher-forced log-probabilities: entry k is log p(tokens[start + k] | tokens[:start + k])."""
        ...

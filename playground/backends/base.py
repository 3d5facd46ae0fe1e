"""The backend protocol every model runtime implements.

Layer convention (the only one in the library): a layer index is a 0-based *block* index, and the
activation of layer ``l`` is the residual stream at the output of block ``l`` — HF
``hidden_states[l + 1]``, llama.cpp ``l_out-l``. Backends convert at their own edge.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError
from ..prompt.chat_template import ChatTemplate
from .sampling import Sampling


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
class Intervention:
    """A change to one layer's output, applied to every position evaluated while it is active.

    ``kind='cap'``: ``h <- h - max(0, h.u - value) u`` (clamp the projection on the unit vector ``u`` at
    ``value``, raw units); ``kind='add'``: ``h <- h + value u``.
    """

    layer: int
    unit: np.ndarray
    kind: str
    value: float

    def apply(self, rows: np.ndarray) -> None:
        """Modify (n, d_model) float32 rows in place."""
        if self.kind == "cap":
            excess = rows @ self.unit - self.value
            np.maximum(excess, 0.0, out=excess)
            rows -= excess[:, None] * self.unit[None, :]
        elif self.kind == "add":
            rows += self.value * self.unit[None, :]
        else:
            raise ValueError(f"unknown intervention kind {self.kind!r}")


class Interventions:
    """Interventions that can be switched on *during* one generation call (guardrails: cap, counter-steer).

    The backend consults it on every forward pass, so one added after token i affects positions from
    the next evaluated one on; earlier positions (and their cached keys/values) stay as they were.
    """

    def __init__(self) -> None:
        self._items: list[Intervention] = []
        self._lock = threading.Lock()

    def add(self, item: Intervention) -> None:
        with self._lock:
            self._items = [*self._items, item]

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def layers(self) -> set[int]:
        return {i.layer for i in self._items}

    def snapshot(self) -> list[Intervention]:
        """The interventions added so far, in order (a copy)."""
        return list(self._items)

    def apply(self, layer: int, rows: np.ndarray) -> bool:
        """Apply every intervention of ``layer`` to ``rows`` in place; True if any applied."""
        done = False
        for item in self._items:
            if item.layer == layer:
                item.apply(rows)
                done = True
        return done


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
    notices: list[str]  # what the user should know about this backend on this machine (shown with every reply)

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
        interventions: Interventions | None = None,
    ) -> Iterator[Step]:
        """Generate after ``prompt`` one token at a time until an end token or ``sampling.max_tokens``.

        Steering applies only inside this call. With ``capture``, every Step carries ``hidden`` (read
        after any intervention). ``interventions`` may grow while the caller consumes the stream.
        """
        ...

    def hidden_states(
        self, tokens: list[int], layers: Sequence[int], *, steering: Steering | None = None, start: int = 0
    ) -> dict[int, np.ndarray]:
        """Teacher-forced activations: layer -> (len(tokens) - start, d_model) float32, one row per position
        from ``start`` on. The rows are the same whatever ``start`` is; a backend may skip recomputing a cached
        prefix before ``start`` when that gives bit-identical rows."""
        ...

    def token_logprobs(self, tokens: list[int], start: int, *, steering: Steering | None = None) -> np.ndarray:
        """Teacher-forced log-probabilities: entry k is log p(tokens[start + k] | tokens[:start + k])."""
        ...

    def score_tokens(
        self, tokens: list[int], start: int, layers: Sequence[int], *, steering: Steering | None = None
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """``token_logprobs(tokens, start)`` and, from the same pass, the activations that made each of those
        predictions: layer -> (len(tokens) - start, d_model), rows of positions start - 1 .. len(tokens) - 2."""
        ...

    def reference_decoding(self) -> contextlib.AbstractContextManager[None]:
        """Inside this block, generate with the backend's reference numerics (the ones the shipped vectors were
        extracted with), even where a faster path exists for chat; a backend with one path does nothing."""
        ...


def check_layer(layer: int, n_layers: int) -> int:
    """``layer`` if the model has that block, else a ModelError naming the blocks it has."""
    if not 0 <= layer < n_layers:
        raise ModelError(f"layer {layer} out of range: this model has blocks 0..{n_layers - 1}")
    return int(layer)


def text_of(backend: Backend, tokens: Sequence[int]) -> str:
    """The text of generated tokens (their bytes joined, then decoded; a split UTF-8 character becomes U+FFFD)."""
    return b"".join(backend.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")

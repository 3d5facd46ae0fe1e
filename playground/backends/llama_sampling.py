"""Sampling on llama.cpp logits, token for token as ``Llama.generate`` samples.

``LogitsViews`` reads a context's last logits in place; ``make_sampler`` picks the sampler for a
``Sampling``: temperature 0 is repeat penalty + greedy done in NumPy (``GreedySampler``, the same picks
as llama.cpp's chain without its per-token candidate array), anything else is llama.cpp's own sampler
chain (``ChainSampler``, the same draws for the same seed).
"""

from __future__ import annotations

import ctypes
import random
from collections import deque

import llama_cpp
import llama_cpp._internals as internals
import numpy as np

from .sampling import Sampling


class LogitsViews:
    """The last evaluated position's logits of a context, in place (writable: samplers read them from here).

    A context keeps its logits in one buffer, so the NumPy view of an address is made once (building it
    through ``np.ctypeslib.as_array`` took longer than sampling itself). One per backend: the views point
    into that backend's contexts."""

    def __init__(self) -> None:
        self._views: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, ctx: llama_cpp.llama_context_p, n_vocab: int) -> np.ndarray:
        address = ctypes.cast(llama_cpp.llama_get_logits_ith(ctx, -1), ctypes.c_void_p).value or 0
        view = self._views.get((address, n_vocab))
        if view is None:
            if len(self._views) > 64:  # contexts come and go (tests, reloads): forget old buffers
                self._views.clear()
            view = (ctypes.c_float * n_vocab).from_address(address)
            view = self._views[(address, n_vocab)] = np.frombuffer(view, dtype=np.float32)
        return view


class GreedySampler:
    """Repeat penalty + greedy, computed exactly as llama.cpp's sampler chain does it, without building its
    49k-entry candidate array every token: a token seen among the last ``last_n`` picks has its logit divided
    by the penalty (multiplied when it is not positive), then the first maximum wins."""

    def __init__(self, penalty: float, last_n: int, logits: LogitsViews):
        self.penalty = np.float32(penalty)
        self.window: deque[int] = deque(maxlen=last_n)
        self.logits = logits

    def sample(self, ctx: llama_cpp.llama_context_p, n_vocab: int) -> int:
        logits = self.logits(ctx, n_vocab)
        if self.penalty != 1.0 and self.window:
            ids = np.fromiter(set(self.window), dtype=np.int64)
            seen = logits[ids]
            logits[ids] = np.where(seen <= 0, seen * self.penalty, seen / self.penalty)
        token = int(np.argmax(logits))
        self.window.append(token)
        return token

    def close(self) -> None:
        pass


class ChainSampler:
    """llama.cpp's own sampler chain, built as ``Llama.generate`` builds it (same draws for the same seed)."""

    def __init__(self, sampling: Sampling, last_n: int):
        self.chain = internals.LlamaSampler()
        self.chain.add_penalties(
            penalty_last_n=last_n, penalty_repeat=sampling.repeat_penalty, penalty_freq=0.0, penalty_present=0.0
        )
        self.chain.add_top_k(sampling.top_k)
        self.chain.add_typical(1.0, 1)
        self.chain.add_top_p(sampling.top_p, 1)
        self.chain.add_min_p(0.0, 1)
        self.chain.add_temp(sampling.temperature)
        self.chain.add_dist(sampling.seed if sampling.seed is not None else random.getrandbits(31))

    def sample(self, ctx: llama_cpp.llama_context_p, _n_vocab: int) -> int:
        return int(llama_cpp.llama_sampler_sample(self.chain.sampler, ctx, -1))

    def close(self) -> None:
        self.chain.close()


def make_sampler(sampling: Sampling, last_n: int, logits: LogitsViews) -> GreedySampler | ChainSampler:
    """The sampling ``Llama.generate`` does (repeat penalty over the last ``last_n`` generated tokens, then greedy,
    or top-k / top-p / temperature / seeded draw), so replies match llama-cpp-python's token for token."""
    if sampling.temperature == 0.0:
        return GreedySampler(sampling.repeat_penalty, last_n, logits)
    return ChainSampler(sampling, last_n)

"""transformers backend (research): any HF causal LM, steering and capture through torch forward hooks.

Hooks are registered around each forward pass only (never across a ``yield``), under a lock, so steering
is scoped to one call and cannot leak into another call sharing the model.
"""

from __future__ import annotations

import functools
import inspect
import random
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from .base import Interventions, Steering, Step, check_layer
from .compute_thread import run_on_compute_thread
from .gguf_folder import ensure_converted
from .hf_tokens import HfTokenMethods, HfTokens
from .model_source import ModelSource
from .sampling import Sampling
from .torch_layers import decoder_layers

REPEAT_LAST_N = 64  # llama-cpp-python's default penalty window (last_n_tokens_size)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TransformersBackend(HfTokenMethods):
    name = "transformers"

    def __init__(self, source: ModelSource, n_ctx: int = 4096, log: Callable[[str], None] = _stderr):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.source = source
        self.model_id = source.model_id
        self.notices: list[str] = []
        if source.kind not in ("gguf", "hf"):
            raise ModelError(f"{source.path}: unknown model kind '{source.kind}' (expected 'gguf' or 'hf')")

        def load(where: str, extra: dict[str, str]) -> tuple[Any, Any]:
            tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True, **extra)
            # loading (de-quantising a GGUF) runs torch's parallel ops: on the compute thread (compute_thread.py)
            model = run_on_compute_thread(
                lambda: AutoModelForCausalLM.from_pretrained(where, local_files_only=True, dtype=torch.float32, **extra)
            )
            return tokenizer, model

        try:
            folder = ensure_converted(source.path, load, log) if source.kind == "gguf" else source.path
            self.tokenizer, self.model = load(str(folder), {})
        except (OSError, ValueError, KeyError, RuntimeError, ImportError, TypeError) as exc:
            raise ModelError(f"{source.path}: transformers could not load the model: {exc}") from exc
        self.model.eval()
        config = self.model.config
        self.n_layers = int(config.num_hidden_layers)
        self.d_model = int(config.hidden_size)
        self.n_ctx = min(n_ctx, int(getattr(config, "max_position_embeddings", None) or n_ctx))
        self.device = next(self.model.parameters()).device
        self._layers = decoder_layers(self.model, self.n_layers)
        self._lock = threading.Lock()
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)

        self.tokens = HfTokens(self.tokenizer, self.model.generation_config, config)
        self.template = self.tokens.template
        self._end_ids = self.tokens.end_ids

    # -- hooks ----------------------------------------------------------------------------------------

    def _check_layer(self, layer: int) -> int:
        return check_layer(layer, self.n_layers)

    @contextmanager
    def _hooks(
        self, steering: Steering | None, capture: Sequence[int], interventions: Interventions | None = None
    ) -> Iterator[dict[int, torch.Tensor]]:
        """Register forward hooks on the steered/captured blocks; yields layer -> last block output (float32).

        The store holds the full (seq, d_model) output of the latest forward pass, after steering.
        """
        adds: dict[int, torch.Tensor] = {}
        for layer, vec in (steering.additions if steering else {}).items():
            arr = np.asarray(vec, dtype=np.float32).reshape(-1)
            if arr.shape != (self.d_model,):
                raise ModelError(f"steering vector for layer {layer} has {arr.size} values, expected {self.d_model}")
            adds[self._check_layer(layer)] = torch.from_numpy(arr.copy()).to(self.device)
        wanted = {self._check_layer(layer) for layer in capture}
        changed = {self._check_layer(layer) for layer in interventions.layers()} if interventions else set()
        store: dict[int, torch.Tensor] = {}

        def make_hook(layer: int) -> Any:
            def hook(module: nn.Module, args: Any, output: Any) -> Any:
                hidden = output[0] if isinstance(output, tuple) else output
                if layer in adds:
                    hidden = hidden + adds[layer].to(hidden.dtype)
                if layer in changed:
                    rows = hidden[0].detach().float().cpu().numpy().copy()
                    interventions.apply(layer, rows)  # type: ignore[union-attr]
                    hidden = torch.from_numpy(rows).to(hidden.dtype).to(hidden.device)[None]
                if layer in wanted:
                    store[layer] = hidden[0].detach().float()
                if layer not in adds and layer not in changed:
                    return None
                return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

            return hook

        handles = []
        try:
            for layer in sorted(adds.keys() | wanted | changed):
                handles.append(self._layers[layer].register_forward_hook(make_hook(layer)))
            yield store
        finally:
            for handle in handles:
                handle.remove()

    def _forward(
        self,
        ids: list[int],
        cache: Any,
        steering: Steering | None,
        capture: Sequence[int],
        interventions: Interventions | None = None,
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """One hooked forward pass; returns the last position's logits and the captured block outputs."""
        kwargs: dict[str, Any] = {self._cache_kw: cache, "use_cache": cache is not None}
        if self._keep_kw:
            kwargs[self._keep_kw] = 1  # only the last position's logits are ever used

        def forward() -> torch.Tensor:
            with torch.inference_mode():  # thread-local: entered on the compute thread
                out = self.model(input_ids=torch.tensor([ids], device=self.device), **kwargs)
                return out.logits[0, -1].float()

        with self._lock, self._hooks(steering, capture, interventions) as store:
            return run_on_compute_thread(forward), store

    # -- generation -----------------------------------------------------------------------------------

    def _pick(self, logits: torch.Tensor, recent: list[int], s: Sampling, gen: torch.Generator, first: bool) -> int:
        logits = logits.clone()
        if first:  # a reply must have at least one token
            logits[self._end_ids] = -torch.inf
        if s.repeat_penalty != 1.0 and recent:  # llama.cpp's penalty: shrink logits of recent tokens
            idx = torch.tensor(sorted(set(recent)), device=logits.device)
            vals = logits[idx]
            logits[idx] = torch.where(vals > 0, vals / s.repeat_penalty, vals * s.repeat_penalty)
        if s.temperature <= 0:
            return int(torch.argmax(logits))
        k = s.top_k if 0 < s.top_k < logits.numel() else logits.numel()
        values, ids = torch.topk(logits, k)  # sorted, best first
        if s.top_p < 1.0:  # keep the smallest head whose probability reaches top_p
            probs = torch.softmax(values, dim=-1)
            keep = (torch.cumsum(probs, dim=-1) - probs) < s.top_p
            values, ids = values[keep], ids[keep]
        probs = torch.softmax(values / s.temperature, dim=-1)
        return int(ids[torch.multinomial(probs.cpu(), 1, generator=gen)])

    def stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        steering: Steering | None = None,
        capture: Sequence[int] = (),
        interventions: Interventions | None = None,
    ) -> Iterator[Step]:
        from transformers import DynamicCache

        if not prompt:
            raise ModelError("empty prompt")
        if len(prompt) >= self.n_ctx:
            raise ModelError(f"prompt has {len(prompt)} tokens; the context holds {self.n_ctx}")
        capture = list(capture)
        gen = torch.Generator().manual_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        try:
            cache = DynamicCache(config=self.model.config)
        except TypeError:  # transformers < 4.56
            cache = DynamicCache()
        # llama-cpp-python's penalty sampler only sees sampled tokens, not the prompt: do the same.
        generated: list[int] = []
        feed = list(prompt)
        while len(generated) < sampling.max_tokens and len(prompt) + len(generated) < self.n_ctx:
            logits, store = self._forward(feed, cache, steering, capture, interventions)
            # torch's parallel ops belong on the compute thread too (one OpenMP team per process)
            token = run_on_compute_thread(
                functools.partial(self._pick, logits, generated[-REPEAT_LAST_N:], sampling, gen, first=not generated)
            )
            if self.is_end(token):
                return
            hidden = {layer: store[layer][-1].cpu().numpy().copy() for layer in capture} if capture else None
            yield Step(token, hidden)
            generated.append(token)
            feed = [token]

    @contextmanager
    def reference_decoding(self) -> Iterator[None]:
        """This backend has one generation path: nothing to switch."""
        yield

    def hidden_states(
        self, tokens: list[int], layers: Sequence[int], *, steering: Steering | None = None, start: int = 0
    ) -> dict[int, np.ndarray]:
        if not 0 <= start <= len(tokens):
            raise ModelError(f"start must be in 0..{len(tokens)}, got {start}")
        if not tokens:
            return {layer: np.zeros((0, self.d_model), dtype=np.float32) for layer in layers}
        _, store = self._forward(list(tokens), None, steering, list(layers))
        return {layer: store[layer][start:].cpu().numpy().copy() for layer in layers}

    def token_logprobs(self, tokens: list[int], start: int, *, steering: Steering | None = None) -> np.ndarray:
        return self.score_tokens(tokens, start, (), steering=steering)[0]

    def score_tokens(
        self, tokens: list[int], start: int, layers: Sequence[int], *, steering: Steering | None = None
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        if not 1 <= start <= len(tokens):
            raise ModelError(f"start must be in 1..{len(tokens)}, got {start}")
        kwargs: dict[str, Any] = {self._cache_kw: None, "use_cache": False}

        def forward() -> np.ndarray:
            with torch.inference_mode():  # on the compute thread, log-softmax included (torch's parallel ops)
                logits = self.model(input_ids=torch.tensor([list(tokens)], device=self.device), **kwargs).logits[0]
                logp = torch.log_softmax(logits[start - 1 : len(tokens) - 1].float(), dim=-1)
                nxt = torch.tensor(tokens[start:], device=logp.device)
                return logp.gather(1, nxt[:, None])[:, 0].cpu().numpy().astype(np.float64)

        with self._lock, self._hooks(steering, list(layers)) as store:
            logprobs = run_on_compute_thread(forward)
            rows = {l: store[l][start - 1 : len(tokens) - 1].cpu().numpy().copy() for l in layers}
        return logprobs, rows

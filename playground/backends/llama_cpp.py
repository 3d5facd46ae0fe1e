"""llama.cpp backend through llama-cpp-python (the fast default).

Steering uses llama.cpp's control-vector adapter (``llama_apply_adapter_cvec``); activations are read
through the scheduler's eval callback (``cb_eval``), which sees every graph node: we ask only for the
``l_out-<il>`` nodes of the layers a caller wants and copy just the rows we need.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import llama_cpp
import llama_cpp._internals as internals
import numpy as np

from ..chat_template import ChatTemplate
from ..errors import ModelError
from ..model_source import ModelSource
from ..personas import Sampling
from .base import Interventions, Steering, Step


@llama_cpp.llama_log_callback
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs to stderr even with verbose=False; keep only errors."""
    if level == 4 and os.environ.get("PLAYGROUND_LLAMA_LOG", "0") == "0":  # GGML_LOG_LEVEL_ERROR
        sys.stderr.write(text.decode("utf-8", errors="replace"))


llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))


def _ggml_base() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.ggml_get_name.argtypes = [ctypes.c_void_p]
    lib.ggml_get_name.restype = ctypes.c_char_p
    lib.ggml_nelements.argtypes = [ctypes.c_void_p]
    lib.ggml_nelements.restype = ctypes.c_int64
    lib.ggml_nbytes.argtypes = [ctypes.c_void_p]
    lib.ggml_nbytes.restype = ctypes.c_size_t
    lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.ggml_backend_tensor_get.restype = None
    lib.ggml_backend_tensor_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.ggml_backend_tensor_set.restype = None
    return lib


_GGML = _ggml_base()

# llama.cpp 0.3.16's AMX kernels (used on CPUs with AMX for micro-batches of 32+ tokens with Q4/Q8 weights)
# give wrong results: on this project's machine the logits of a 53-token prompt evaluated in one batch
# correlated only 0.88 with the same prompt evaluated token by token (and with transformers), and residual
# activations differed by 25-70%. Micro-batches of at most 31 tokens take the correct path, at the same speed
# (measured in tests/test_llama_regression.py and benchmarks/). See docs/FINDINGS.md.
SAFE_UBATCH = 31
# Logical batches are a whole number of micro-batches, so micro-batch boundaries always fall on multiples of
# SAFE_UBATCH counted from position 0, however a prompt is split into calls. That makes prefix-cache reuse
# exact (see LlamaCppBackend._reusable_prefix).
SAFE_BATCH = SAFE_UBATCH * 16


class _Capture:
    """State shared with the eval callback: which layers to copy or change, and where the rows go.

    The scheduler calls back twice per graph node: ``ask=True`` (do you want this node?) and, for the
    nodes we want, ``ask=False`` once it is computed and before anything reads it. Writing the rows back
    at that point is how guardrail interventions (cap, counter-steer) change the rest of the forward pass.
    """

    def __init__(self, d_model: int, n_layers: int):
        self.d_model = d_model
        self.layer_of = {f"l_out-{l}".encode(): l for l in range(n_layers)}
        self.capture: frozenset[int] = frozenset()
        self.all_rows = False  # False: keep only the last row of each batch (the position that predicts)
        self.last: dict[int, np.ndarray] = {}
        self.rows: dict[int, list[np.ndarray]] = {}
        self.interventions: Interventions | None = None

    def want(self, layers: Sequence[int], all_rows: bool, interventions: Interventions | None = None) -> None:
        self.capture = frozenset(int(l) for l in layers)
        self.all_rows = all_rows
        self.last = {}
        self.rows = {int(l): [] for l in layers}
        self.interventions = interventions

    def active(self) -> bool:
        return bool(self.capture) or bool(self.interventions)

    def callback(self, tensor: int, ask: bool, _user: int) -> bool:
        if not self.capture and not self.interventions:
            return False
        layer = self.layer_of.get(_GGML.ggml_get_name(tensor))
        if layer is None:
            return False
        changes = self.interventions is not None and layer in self.interventions.layers()
        if layer not in self.capture and not changes:
            return False
        if ask:
            return True
        n = _GGML.ggml_nelements(tensor)
        buf = np.empty(n, dtype=np.float32)
        _GGML.ggml_backend_tensor_get(tensor, buf.ctypes.data, 0, buf.nbytes)
        rows = buf.reshape(-1, self.d_model)
        if changes and self.interventions is not None and self.interventions.apply(layer, rows):
            _GGML.ggml_backend_tensor_set(tensor, buf.ctypes.data, 0, buf.nbytes)
        if layer in self.capture:
            self.last[layer] = rows[-1].copy()
            if self.all_rows:
                self.rows[layer].append(rows)
        return True


class LlamaCppBackend:
    name = "llama_cpp"

    def __init__(
        self, source: ModelSource, n_ctx: int = 4096, n_threads: int | None = None, n_ubatch: int = SAFE_UBATCH
    ):
        self.source = source
        self.model_id = source.model_id
        # PLAYGROUND_THREADS lets several model processes share a small machine without oversubscribing it
        # (llama.cpp's threads spin while they wait: two 2-thread processes on 2 cores run ~10x slower).
        threads = n_threads or int(os.environ.get("PLAYGROUND_THREADS", 0)) or max(1, min(os.cpu_count() or 1, 8))
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(source.path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=n_ubatch * (SAFE_BATCH // SAFE_UBATCH),
                n_ubatch=n_ubatch,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{source.path}: llama.cpp could not load the model: {exc}") from exc
        meta = self.llm.metadata
        arch = meta.get("general.architecture", "llama")
        self.n_ctx = self.llm.n_ctx()
        self.n_layers = int(meta.get(f"{arch}.block_count", 0))
        self.d_model = self.llm.n_embd()
        self._vocab = self.llm._model.vocab
        self._bytes: dict[int, bytes] = {}
        n_vocab = self.llm.n_vocab()
        self._end_ids = np.array(
            [t for t in range(n_vocab) if llama_cpp.llama_token_is_eog(self._vocab, t)] or [self.llm.token_eos()],
            dtype=np.int64,
        )
        self.template = ChatTemplate(
            meta.get("tokenizer.chat_template"),
            bos_token=self._piece(self.llm.token_bos()),
            eos_token=self._piece(self.llm.token_eos()),
        )
        self._install_eval_callback()
        self._cvec_fingerprint = Steering().fingerprint()
        self._ubatch = n_ubatch
        # Tokens whose keys/values sit in the cache exactly as a from-scratch evaluation would leave them
        # (evaluated in aligned micro-batches under the current steering); generated tokens are not.
        self._aligned: list[int] = []

    # -- set-up --------------------------------------------------------------------------------
    def _install_eval_callback(self) -> None:
        """Rebuild the context with cb_eval set (llama.cpp reads it only at context creation)."""
        self._capture = _Capture(self.d_model, self.n_layers)
        self._cb = llama_cpp.ggml_backend_sched_eval_callback(self._capture.callback)
        params = self.llm.context_params
        params.cb_eval = self._cb
        params.cb_eval_user_data = None
        self.llm._ctx.close()
        self.llm._ctx = internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self.llm.reset()

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    # -- protocol ------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def token_bytes(self, token: int) -> bytes:
        # llama-cpp-python 0.3.16 detokenizes through a 32-byte buffer, so longer pieces (runs of spaces or
        # dashes) came back empty; ask for the size first, as llama.cpp's own common code does.
        cached = self._bytes.get(token)
        if cached is None:
            cached = self._bytes[token] = self._token_piece(token)
        return cached

    def _token_piece(self, token: int) -> bytes:
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self._vocab, llama_cpp.llama_token(token), buf, size, 0, False)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_token_is_eog(self._vocab, token))

    def _reusable_prefix(self, prompt: list[int]) -> int:
        """How many leading prompt tokens can keep their cached keys/values.

        llama.cpp's numbers depend (slightly) on how positions were grouped into micro-batches, so a cached
        prefix is reused only up to the last micro-batch boundary that a from-scratch evaluation of this
        prompt would also have: the reply is then bit-for-bit the same as without the cache, and a chat
        turn re-evaluates only the new messages (plus at most SAFE_UBATCH - 1 tokens).
        """
        common = 0
        for a, b in zip(self._aligned, prompt[:-1], strict=False):
            if a != b:
                break
            common += 1
        return (common // self._ubatch) * self._ubatch

    def _apply_steering(self, steering: Steering | None) -> None:
        """Load (or clear) the control vector; a change invalidates the KV cache."""
        steering = steering or Steering()
        fingerprint = steering.fingerprint()
        if fingerprint == self._cvec_fingerprint:
            return
        ctx = self.llm._ctx.ctx
        layers = [l for l, v in steering.additions.items() if np.any(v)]
        if not layers:
            llama_cpp.llama_apply_adapter_cvec(ctx, None, 0, self.d_model, 0, 0)
        else:
            if min(layers) < 1 or max(layers) >= self.n_layers:
                raise ModelError(f"llama.cpp can steer layers 1..{self.n_layers - 1}, got {sorted(layers)}")
            buf = np.zeros((self.n_layers, self.d_model), dtype=np.float32)  # row i is layer i + 1
            for layer in layers:
                buf[layer - 1] = np.asarray(steering.additions[layer], dtype=np.float32)
            ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            rc = llama_cpp.llama_apply_adapter_cvec(ctx, ptr, buf.size, self.d_model, min(layers), max(layers))
            if rc != 0:
                raise ModelError(f"llama.cpp refused the control vector (code {rc})")
        self._cvec_fingerprint = fingerprint
        self.llm.reset()  # cached keys/values were computed under the old steering
        self._aligned = []

    @contextlib.contextmanager
    def _capturing(
        self, layers: Sequence[int], all_rows: bool, interventions: Interventions | None = None
    ) -> Iterator[_Capture]:
        bad = [l for l in layers if not 0 <= l < self.n_layers - 1]
        if bad:
            raise ModelError(f"can read layers 0..{self.n_layers - 2} on this backend, got {bad}")
        self._capture.want(layers, all_rows, interventions)
        try:
            yield self._capture
        finally:
            self._capture.want((), False)

    def stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        steering: Steering | None = None,
        capture: Sequence[int] = (),
        interventions: Interventions | None = None,
    ) -> Iterator[Step]:
        if not prompt:
            raise ModelError("empty prompt")
        self._apply_steering(steering)
        # Interventions active from the start change the prompt's keys/values: no reuse either way.
        reuse = 0 if interventions else self._reusable_prefix(prompt)
        self.llm.n_tokens = reuse
        self._aligned = [] if interventions else list(prompt)
        self.llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        prompt_len = len(prompt)
        end_ids = self._end_ids

        def no_empty_reply(input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
            # A reply must have at least one token: forbid ending the turn at the first position.
            if len(input_ids) == prompt_len:
                logits[end_ids] = -np.inf
            return logits

        layers = list(capture)
        if interventions is not None and any(not 1 <= l < self.n_layers - 1 for l in interventions.layers()):
            raise ModelError(f"can intervene on layers 1..{self.n_layers - 2}, got {sorted(interventions.layers())}")
        with self._capturing(layers, all_rows=False, interventions=interventions) as cap:
            generator = self.llm.generate(
                prompt[reuse:],
                reset=False,
                temp=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                min_p=0.0,
                repeat_penalty=sampling.repeat_penalty,
                logits_processor=llama_cpp.LogitsProcessorList([no_empty_reply]),
            )
            produced = 0
            try:
                for token in generator:
                    if self.is_end(token):
                        return
                    hidden = {l: cap.last[l] for l in layers} if layers else None
                    yield Step(token, hidden)
                    produced += 1
                    if produced >= sampling.max_tokens:
                        return
            finally:
                generator.close()

    def hidden_states(
        self, tokens: list[int], layers: Sequence[int], *, steering: Steering | None = None
    ) -> dict[int, np.ndarray]:
        if not tokens:
            raise ModelError("no tokens to read")
        self._apply_steering(steering)
        with self._capturing(list(layers), all_rows=True) as cap:
            self.llm.reset()
            self._aligned = []
            self.llm.eval(tokens)
            self._aligned = list(tokens)
            out = {l: np.concatenate(cap.rows[l], axis=0) for l in layers}
        for l, rows in out.items():
            if rows.shape[0] != len(tokens):
                raise ModelError(f"captured {rows.shape[0]} rows for {len(tokens)} tokens at layer {l}")
        return out

    def token_logprobs(self, tokens: list[int], start: int, *, steering: Steering | None = None) -> np.ndarray:
        if not 1 <= start <= len(tokens):
            raise ModelError(f"start must be in 1..{len(tokens)}, got {start}")
        self._apply_steering(steering)
        self.llm.reset()
        self._aligned = []
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(-1, 0, -1)
        n_batch = self.llm.n_batch
        n_vocab = self.llm.n_vocab()
        out: list[float] = []
        batch = internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        try:
            for begin in range(0, len(tokens) - 1, n_batch):
                chunk = tokens[begin : min(begin + n_batch, len(tokens) - 1)]
                b = batch.batch
                b.n_tokens = len(chunk)
                wanted = []
                for i, tok in enumerate(chunk):
                    pos = begin + i
                    b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos, 1
                    b.seq_id[i][0] = 0
                    b.logits[i] = pos >= start - 1  # the logits at pos predict tokens[pos + 1]
                    if b.logits[i]:
                        wanted.append((i, tokens[pos + 1]))
                if llama_cpp.llama_decode(ctx.ctx, b) != 0:
                    raise ModelError("llama.cpp could not evaluate the tokens")
                for i, nxt in wanted:
                    row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, i), shape=(n_vocab,))
                    top = float(row.max())
                    out.append(float(row[nxt]) - top - float(np.log(np.exp(row - top).sum())))
        finally:
            batch.close()
            ctx.kv_cache_seq_rm(-1, 0, -1)
            self.llm.reset()
        return np.asarray(out, dtype=np.float64)

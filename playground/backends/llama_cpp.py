"""llama.cpp backend through llama-cpp-python (the fast default).

Steering uses llama.cpp's control-vector adapter (``llama_apply_adapter_cvec``); activations are read
through the scheduler's eval callback (``cb_eval``), which sees every graph node: we ask only for the
``l_out-<il>`` nodes of the layers a caller wants and copy just the rows we need.
Sampling is in llama_sampling.py; checking and choosing the generation path in llama_paths.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import llama_cpp
import llama_cpp._internals as internals
import numpy as np

from ..errors import ModelError
from ..prompt.chat_template import ChatTemplate
from ..steering.store import user_cache_dir
from .base import Interventions, Steering, Step
from .compute_thread import run_on_compute_thread
from .cpu_share import ThreadFitter
from .decode_check import DecodeCheck
from .eval_filter import EvalFilter, make_filter
from .kv_transfer import SequenceCopier
from .llama_build import default_ubatch
from .llama_paths import DecodingPaths
from .llama_sampling import LogitsViews, make_sampler
from .model_source import ModelSource
from .sampling import Sampling

# Micro-batch size: 31 where the build has AMX kernels (their 32+-token path mis-computes in 0.3.16), larger
# otherwise (llama_build.py). Logical batches are a whole number of micro-batches, so micro-batch boundaries
# always fall on multiples of the micro-batch size counted from position 0, however a prompt is split into
# calls. That makes prefix-cache reuse exact (see LlamaCppBackend._reusable_prefix).
SAFE_UBATCH = default_ubatch()
UBATCHES_PER_BATCH = 16
SAFE_BATCH = SAFE_UBATCH * UBATCHES_PER_BATCH


class LlamaCppBackend(DecodingPaths):
    name = "llama_cpp"

    def __init__(
        self,
        source: ModelSource,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_ubatch: int | None = None,
        native_filter: bool | None = None,
        flash_decode: bool = True,
        check_cache: Path | None = None,
    ):
        self.source = source
        self.flash_decode = flash_decode
        self._native_filter = native_filter
        self.model_id = source.model_id
        self.notices: list[str] = []
        self.decode_check: DecodeCheck | None = None
        self._logits = LogitsViews()
        n_ubatch = n_ubatch or SAFE_UBATCH
        # PLAYGROUND_THREADS lets several model processes share a small machine without oversubscribing it
        # (llama.cpp's threads spin while they wait: two 2-thread processes on 2 cores run ~10x slower); and
        # whatever the number, fewer are used while other processes keep CPUs busy (cpu_share.py).
        threads = n_threads or int(os.environ.get("PLAYGROUND_THREADS", 0)) or max(1, min(os.cpu_count() or 1, 8))
        self._threads = ThreadFitter(threads)
        try:
            # Loading repacks the weights in parallel (OpenMP): on the compute thread too (see compute_thread.py).
            self.llm = run_on_compute_thread(
                lambda: llama_cpp.Llama(
                    model_path=str(source.path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_batch=n_ubatch * UBATCHES_PER_BATCH,
                    n_ubatch=n_ubatch,
                    verbose=False,
                )
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
        run_on_compute_thread(self._install_eval_callback)
        self._cvec_fingerprint = Steering().fingerprint()
        self._ubatch = n_ubatch
        # Tokens whose keys/values sit in the cache exactly as a from-scratch evaluation would leave them
        # (evaluated in aligned micro-batches under the current steering); generated tokens are not.
        self._aligned: list[int] = []
        self._apply_steering(None, force=True)  # the all-zero vector: graphs have their steered shape from the start
        if flash_decode:
            self._validate_flash_decoding(check_cache or user_cache_dir() / "checks")

    # -- set-up --------------------------------------------------------------------------------
    def _install_eval_callback(self) -> None:
        """Rebuild the context with cb_eval set (llama.cpp reads it only at context creation), and create the
        generation context.

        Prompts, reads and scoring run in ``self.llm._ctx`` (no flash attention: its batched products are the
        fastest way through many tokens). With ``flash_decode`` the reply's tokens are then generated one by one
        in a second context of the same model with flash attention (fewer graph nodes per token), which receives
        the prompt's keys/values after the first token (kv_transfer.py). Both share the one eval filter: only
        one of them computes at a time, on the compute thread."""
        self._filter = make_filter(self.d_model, self.n_layers, native=self._native_filter)
        params = self.llm.context_params
        self._filter.install(params)
        self.llm._ctx.close()
        self.llm._ctx = internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self._step_ctx = self.llm._ctx
        if self.flash_decode:
            step = llama_cpp.llama_context_params.from_buffer_copy(params)
            step.flash_attn = True
            self._filter.install(step)
            self._step_ctx = internals.LlamaContext(model=self.llm._model, params=step, verbose=False)
        self._copier = SequenceCopier()
        self._hand_over = self.flash_decode
        self.llm.reset()
        self._batch = internals.LlamaBatch(n_tokens=self.llm.n_batch, embd=0, n_seq_max=1, verbose=False)

    def close(self) -> None:
        """Free the contexts and the model now rather than at garbage collection."""
        if self._step_ctx is not self.llm._ctx:
            self._step_ctx.close()
        self.llm.close()

    @property
    def native_filter(self) -> bool:
        """True when the C eval filter answers llama.cpp's per-node questions (see eval_filter.py)."""
        return self._filter.native

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

    def _apply_steering(self, steering: Steering | None, *, force: bool = False) -> None:
        """Load the control vector; a change invalidates the KV cache.

        The vector always spans layers 1..n_layers-1 (zeros where nothing is steered; adding zero changes no
        value), so every compute graph has the same shape whatever the steering. llama.cpp 0.3.16 reuses the
        previous graph for a batch of the same shape and takes the context's control vector as unchanged
        when it is the same object: a graph built for other steered layers (or none) would be run with the
        new vector's data, so steering would leak into unsteered passes or silently not apply
        (tests/test_llama_graph_reuse.py)."""
        steering = steering or Steering()
        fingerprint = steering.fingerprint()
        if fingerprint == self._cvec_fingerprint and not force:
            return
        layers = [l for l, v in steering.additions.items() if np.any(v)]
        if layers and (min(layers) < 1 or max(layers) >= self.n_layers):
            raise ModelError(f"llama.cpp can steer layers 1..{self.n_layers - 1}, got {sorted(layers)}")
        buf = np.zeros((self.n_layers, self.d_model), dtype=np.float32)  # row i is layer i + 1
        for layer in layers:
            buf[layer - 1] = np.asarray(steering.additions[layer], dtype=np.float32)
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for ctx in {self.llm._ctx.ctx, self._step_ctx.ctx}:
            rc = llama_cpp.llama_apply_adapter_cvec(ctx, ptr, buf.size, self.d_model, 1, self.n_layers - 1)
            if rc != 0:
                raise ModelError(f"llama.cpp refused the control vector (code {rc})")
        self._cvec_fingerprint = fingerprint
        self.llm.reset()  # cached keys/values were computed under the old steering
        self._aligned = []

    @contextlib.contextmanager
    def _capturing(
        self, layers: Sequence[int], all_rows: bool, interventions: Interventions | None = None
    ) -> Iterator[EvalFilter]:
        bad = [l for l in layers if not 0 <= l < self.n_layers - 1]
        if bad:
            raise ModelError(f"can read layers 0..{self.n_layers - 2} on this backend, got {bad}")
        self._filter.want(layers, all_rows, interventions)
        try:
            yield self._filter
        finally:
            self._filter.want((), False)

    def _decode(
        self,
        tokens: Sequence[int],
        start: int,
        *,
        logits_from: int | None = None,
        read: Callable[[int, int], None] | None = None,
        ctx: llama_cpp.llama_context_p | None = None,
    ) -> None:
        """Evaluate ``tokens`` at positions ``start``.. in logical batches of ``n_batch`` (each split by llama.cpp
        into ``n_ubatch`` micro-batches). Logits are kept for the last position, or with ``logits_from`` for
        every position from that one on; after each batch ``read(position, index_in_batch)`` sees each of them.
        ``ctx`` defaults to the prompt context."""
        ctx = ctx or self.llm._ctx.ctx
        b = self._batch.batch
        n_batch = self.llm.n_batch
        last = start + len(tokens) - 1
        for begin in range(0, len(tokens), n_batch):
            chunk = tokens[begin : begin + n_batch]
            b.n_tokens = len(chunk)
            kept = []
            for i, tok in enumerate(chunk):
                pos = start + begin + i
                b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos, 1
                b.seq_id[i][0] = 0
                b.logits[i] = pos == last if logits_from is None else pos >= logits_from
                if b.logits[i]:
                    kept.append((pos, i))
            self._filter.sync()  # guardrails may have added an intervention since the last call
            self._threads.fit(ctx)
            if run_on_compute_thread(lambda: llama_cpp.llama_decode(ctx, b)) != 0:
                raise ModelError(f"llama.cpp could not evaluate {len(chunk)} tokens at position {start + begin}")
            if read is not None:
                for pos, i in kept:
                    read(pos, i)

    def _hand_over_prompt(self, prompt_ctx: llama_cpp.llama_context_p) -> llama_cpp.llama_context_p:
        """Copy the prompt's keys/values into the flash-attention context; returns that context."""
        step_ctx = self._step_ctx.ctx
        run_on_compute_thread(lambda: self._copier.copy(prompt_ctx, step_ctx))
        return step_ctx

    def stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        steering: Steering | None = None,
        capture: Sequence[int] = (),
        interventions: Interventions | None = None,
    ) -> Iterator[Step]:
        # Which path generates is fixed when the stream is asked for, even if it is consumed outside a
        # reference_decoding() block.
        return self._stream(prompt, sampling, steering, capture, interventions, hand_over=self._hand_over)

    def _stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        steering: Steering | None,
        capture: Sequence[int],
        interventions: Interventions | None,
        *,
        hand_over: bool,
    ) -> Iterator[Step]:
        if not prompt:
            raise ModelError("empty prompt")
        if len(prompt) >= self.n_ctx:
            raise ModelError(f"the prompt has {len(prompt)} tokens; the context holds {self.n_ctx}")
        if interventions is not None and any(not 1 <= l < self.n_layers - 1 for l in interventions.layers()):
            raise ModelError(f"can intervene on layers 1..{self.n_layers - 2}, got {sorted(interventions.layers())}")
        self._apply_steering(steering)
        # Interventions active from the start change the prompt's keys/values: no reuse either way.
        reuse = 0 if interventions else self._reusable_prefix(prompt)
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(-1, reuse, -1)
        self.llm.n_tokens = 0  # llama-cpp-python's own bookkeeping is not used by this backend
        self._aligned = []
        layers = list(capture)
        sampler = make_sampler(sampling, self.llm.last_n_tokens_size, self._logits)
        n_vocab = self.llm.n_vocab()
        try:
            with self._capturing(layers, all_rows=False, interventions=interventions) as cap:
                self._decode(prompt[reuse:], reuse)
                if not interventions:
                    self._aligned = list(prompt)
                position = len(prompt)
                logits_ctx = ctx.ctx
                for produced in range(sampling.max_tokens):
                    if produced == 0:  # a reply has at least one token: no end of turn at the first position
                        self._logits(logits_ctx, n_vocab)[self._end_ids] = -np.inf
                    token = sampler.sample(logits_ctx, n_vocab)
                    if self.is_end(token):
                        return
                    yield Step(token, {l: cap.last_row(l) for l in layers} if layers else None)
                    if produced + 1 >= sampling.max_tokens or position >= self.n_ctx:
                        return
                    if produced == 0 and hand_over:
                        # After the first token is out, so it costs no time to first token (~5 ms / 500 tokens).
                        logits_ctx = self._hand_over_prompt(ctx.ctx)
                    self._decode([token], position, ctx=logits_ctx)
                    position += 1
        finally:
            sampler.close()

    def hidden_states(
        self, tokens: list[int], layers: Sequence[int], *, steering: Steering | None = None, start: int = 0
    ) -> dict[int, np.ndarray]:
        if not tokens:
            raise ModelError("no tokens to read")
        if not 0 <= start <= len(tokens):
            raise ModelError(f"start must be in 0..{len(tokens)}, got {start}")
        self._apply_steering(steering)
        # Keys/values cached by the previous call (e.g. the generation of this very reply) are reused up to a
        # micro-batch boundary at or before ``start``: the rows are then bit-identical to a fresh evaluation.
        reuse = min(self._reusable_prefix(tokens), (start // self._ubatch) * self._ubatch)
        with self._capturing(list(layers), all_rows=True) as cap:
            self.llm._ctx.kv_cache_seq_rm(-1, reuse, -1)
            self._aligned = []
            self._decode(tokens[reuse:], reuse)
            self._aligned = list(tokens)
            out = {l: np.concatenate(cap.rows[l], axis=0)[start - reuse :] for l in layers}
        for l, rows in out.items():
            if rows.shape[0] != len(tokens) - start:
                raise ModelError(f"captured {rows.shape[0]} rows for {len(tokens) - start} tokens at layer {l}")
        return out

    def token_logprobs(self, tokens: list[int], start: int, *, steering: Steering | None = None) -> np.ndarray:
        return self.score_tokens(tokens, start, (), steering=steering)[0]

    def score_tokens(
        self, tokens: list[int], start: int, layers: Sequence[int], *, steering: Steering | None = None
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        if not 1 <= start <= len(tokens):
            raise ModelError(f"start must be in 1..{len(tokens)}, got {start}")
        self._apply_steering(steering)
        # The logits at position p predict tokens[p + 1]: positions start - 1 .. len - 2 are needed; a cached
        # prefix before them is reused when it is exactly what a fresh evaluation would compute.
        reuse = min(self._reusable_prefix(tokens), ((start - 1) // self._ubatch) * self._ubatch)
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(-1, reuse, -1)
        self._aligned = []
        n_vocab = self.llm.n_vocab()
        out: list[float] = []

        def read(pos: int, i: int) -> None:  # the logits at position pos predict tokens[pos + 1]
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, i), shape=(n_vocab,))
            top = float(row.max())
            out.append(float(row[tokens[pos + 1]]) - top - float(np.log(np.exp(row - top).sum())))

        with self._capturing(list(layers), all_rows=True) as cap:
            self._decode(tokens[reuse : len(tokens) - 1], reuse, logits_from=start - 1, read=read)
            first = start - 1 - reuse
            rows = {l: np.concatenate(cap.rows[l], axis=0)[first:] for l in layers} if len(tokens) > 1 else {}
        # The cache now holds tokens[:-1] exactly as a fresh evaluation would (aligned micro-batches; which
        # positions ask for logits changes nothing before the last layer), so a following read can reuse it.
        self._aligned = list(tokens[:-1])
        return np.asarray(out, dtype=np.float64), rows

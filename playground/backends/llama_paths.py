"""Which path generates a reply on llama.cpp, and the checks that choose it (part of ``LlamaCppBackend``).

Two ways to produce the reply's tokens one by one after a batched prompt: the *reference* path (in the
prompt's own context) and the *flash* path (the prompt's keys/values handed over to a second context with
flash attention, fewer graph nodes per token). At start-up the backend compares their teacher-forced
logits on a few texts and times both (decode_check.py does the comparing, caches the verdict per model,
llama.cpp build and CPU); it generates on the flash path only when that agrees with the reference path
and is faster here. ``reference_decoding``/``flash_decoding`` pin one path for a block of code.

``DecodingPaths`` is a mixin: its methods run on the backend's contexts and decode loop (``llm``,
``_step_ctx``, ``_decode``, ``_capturing``, ``_apply_steering``, ``_hand_over_prompt``, ``_logits``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from ..errors import ModelError
from ..prompt.chat_template import Message
from .compute_thread import run_on_compute_thread
from .decode_check import (
    CHECK_TEXTS,
    TIMING_ROUNDS,
    TIMING_TOKENS,
    CheckCache,
    DecodeCheck,
    cache_key,
    cpu_model,
    fallback_notice,
    run_check,
    timing_context,
)
from .llama_build import build_tag, is_portable_build

# Texts of the start-up decoding check (about 160 teacher-forced positions, ~2 s, once per CPU and build);
# `python -m playground eval decoding-check` runs all of them.
STARTUP_TEXTS = 2


class DecodingPaths:
    """The reference and flash generation paths of ``LlamaCppBackend``: checking, timing and choosing them."""

    def _validate_flash_decoding(self, cache_folder: Path) -> None:
        """Generate with flash attention only if it matches the reference path on this CPU and is faster here
        (decode_check.py)."""
        cpu = cpu_model()
        key = cache_key(Path(self.source.path), build_tag(), cpu, STARTUP_TEXTS)
        cache = CheckCache(cache_folder)
        check = cache.get(key)
        failed = cache.failure(key) if check is None else None
        if check is None and failed is None:
            try:
                check = self.check_decoding_paths(CHECK_TEXTS[:STARTUP_TEXTS])
                cache.put(key, check)
            except ModelError as exc:  # e.g. a cache layout the hand-over cannot read (sliding-window attention)
                failed = str(exc)
                cache.put_failure(key, failed)  # remembered: later loads fall back without trying again
        if check is None:
            self._hand_over = False
            self.notices.append(
                f"replies are generated on llama.cpp's reference path: the prompt's keys/values of this "
                f"architecture cannot be handed to the flash-attention context ({failed})"
            )
            return
        self.decode_check = check
        self._hand_over = check.generation_path == "flash"
        if not check.passed:
            self.notices.append(fallback_notice(check))
        if not is_portable_build():
            self.notices.append(
                f"llama.cpp here was built with other instruction-set features ({build_tag()}) than the project's "
                "portable build (scripts/build_llama.sh): replies and readouts differ in rounding from other machines."
            )

    def check_decoding_paths(self, texts: Sequence[tuple[str, str]] = CHECK_TEXTS) -> DecodeCheck:
        """Compare the flash-attention path's logits with the reference path's on teacher-forced replies."""
        sequences = []
        for question, reply in texts:
            messages = [Message("system", "You are a helpful assistant."), Message("user", question)]
            prompt = self.tokenize(self.template.render(messages))
            sequences.append((prompt + self.tokenize(reply), len(prompt)))
        context = timing_context(self.tokenize)
        return run_check(
            self.teacher_forced_logits,
            sequences,
            lambda: self.time_decoding_paths(context),
            build=build_tag(),
            cpu=cpu_model(),
        )

    def time_decoding_paths(
        self, context: list[int], n_tokens: int = TIMING_TOKENS, rounds: int = TIMING_ROUNDS
    ) -> dict[str, list[float]]:
        """Seconds each generation path (``reference``, ``flash``) took to decode ``n_tokens`` tokens one by
        one after ``context``, per round; rounds alternate which path goes first (the hand-over not counted)."""
        if self._step_ctx is self.llm._ctx:
            raise ModelError("this backend was created without a flash-attention context (flash_decode=False)")
        if rounds < 1 or not 0 < n_tokens <= len(context) or len(context) + n_tokens >= self.n_ctx:
            raise ModelError(f"cannot time {rounds} rounds of {n_tokens} tokens after a context of {len(context)}")
        return run_on_compute_thread(lambda: self._time_paths(context, n_tokens, rounds))

    def _time_paths(self, context: list[int], n_tokens: int, rounds: int) -> dict[str, list[float]]:
        self._apply_steering(None)
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(-1, 0, -1)
        self._aligned = []
        seconds: dict[str, list[float]] = {"reference": [], "flash": []}
        with self._capturing((), False):
            self._decode(context, 0)
            for r in range(rounds):
                for path in ("reference", "flash") if r % 2 == 0 else ("flash", "reference"):
                    ctx.kv_cache_seq_rm(-1, len(context), -1)
                    step = self._hand_over_prompt(ctx.ctx) if path == "flash" else ctx.ctx
                    begun = time.perf_counter()
                    for i, token in enumerate(context[:n_tokens]):  # any tokens will do
                        self._decode([token], len(context) + i, ctx=step)
                    seconds[path].append(time.perf_counter() - begun)
        ctx.kv_cache_seq_rm(-1, len(context), -1)
        self._aligned = []
        return seconds

    def teacher_forced_logits(self, tokens: list[int], n_prompt: int, path: str = "reference") -> np.ndarray:
        """Logits of positions ``n_prompt - 1 .. len(tokens) - 2`` (each predicts the next token) on one path:
        ``reference`` (the prompt batched, then one token at a time in the prompt context, as generation without
        flash attention does), ``flash`` (the same, after the hand-over to the flash-attention context) or
        ``batched`` (all positions in batches in the prompt context, as reads and scoring do)."""
        if path == "flash" and self._step_ctx is self.llm._ctx:
            raise ModelError("this backend was created without a flash-attention context (flash_decode=False)")
        if path not in ("reference", "flash", "batched"):
            raise ModelError(f"unknown decoding path {path!r}; choose reference, flash or batched")
        if not 1 <= n_prompt < len(tokens):
            raise ModelError(f"n_prompt must be in 1..{len(tokens) - 1}, got {n_prompt}")
        return run_on_compute_thread(lambda: self._teacher_forced(tokens, n_prompt, path))

    def _teacher_forced(self, tokens: list[int], n_prompt: int, path: str) -> np.ndarray:
        self._apply_steering(None)
        ctx = self.llm._ctx
        ctx.kv_cache_seq_rm(-1, 0, -1)
        self._aligned = []
        n_vocab = self.llm.n_vocab()
        rows: list[np.ndarray] = []

        def read(_pos: int, i: int) -> None:
            rows.append(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, i), shape=(n_vocab,)).copy())

        with self._capturing((), False):
            if path == "batched":
                self._decode(tokens[:-1], 0, logits_from=n_prompt - 1, read=read)
            else:
                self._decode(tokens[:n_prompt], 0)
                rows.append(self._logits(ctx.ctx, n_vocab).copy())
                step = self._hand_over_prompt(ctx.ctx) if path == "flash" else ctx.ctx
                for position in range(n_prompt, len(tokens) - 1):
                    self._decode([tokens[position]], position, ctx=step)
                    rows.append(self._logits(step, n_vocab).copy())
        self._aligned = []  # the cache holds one-by-one rows, not what a fresh prompt evaluation gives
        return np.stack(rows)

    def reference_decoding(self) -> contextlib.AbstractContextManager[None]:
        """Generate in the prompt context inside this block (no hand-over to flash attention): the numerics the
        shipped vectors were extracted with, so extraction reproduces them bit for bit."""
        return self._decoding_path(hand_over=False)

    def flash_decoding(self) -> contextlib.AbstractContextManager[None]:
        """Generate with the hand-over to the flash-attention context inside this block, whichever path the
        start-up check chose for this CPU (evaluations of that path use it)."""
        if self._step_ctx is self.llm._ctx:
            raise ModelError("this backend was created without a flash-attention context (flash_decode=False)")
        return self._decoding_path(hand_over=True)

    @contextlib.contextmanager
    def _decoding_path(self, *, hand_over: bool) -> Iterator[None]:
        saved, self._hand_over = self._hand_over, hand_over
        try:
            yield
        finally:
            self._hand_over = saved

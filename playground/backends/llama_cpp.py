"""llama.cpp backend through llama-cpp-python (the fast default)."""

from __future__ import annotations

import ctypes
import os
import random
import sys
from collections.abc import Iterator

import llama_cpp
import numpy as np

from ..chat_template import ChatTemplate
from ..errors import ModelError
from ..model_source import ModelSource
from ..personas import Sampling
from .base import Step


@llama_cpp.llama_log_callback
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs to stderr even with verbose=False; keep only errors."""
    if level == 4 and os.environ.get("PLAYGROUND_LLAMA_LOG", "0") == "0":  # GGML_LOG_LEVEL_ERROR
        sys.stderr.write(text.decode("utf-8", errors="replace"))


llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))


class LlamaCppBackend:
    name = "llama_cpp"

    def __init__(self, source: ModelSource, n_ctx: int = 4096, n_threads: int | None = None):
        self.source = source
        self.model_id = source.model_id
        threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(source.path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
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

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def token_bytes(self, token: int) -> bytes:
        return self.llm.detokenize([token])

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_token_is_eog(self._vocab, token))

    def stream(self, prompt: list[int], sampling: Sampling) -> Iterator[Step]:
        if not prompt:
            raise ModelError("empty prompt")
        self.llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        prompt_len = len(prompt)
        end_ids = self._end_ids

        def no_empty_reply(input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
            # A reply must have at least one token: forbid ending the turn at the first position.
            if len(input_ids) == prompt_len:
                logits[end_ids] = -np.inf
            return logits

        generator = self.llm.generate(
            prompt,
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
                yield Step(token)
                produced += 1
                if produced >= sampling.max_tokens:
                    return
        finally:
            generator.close()

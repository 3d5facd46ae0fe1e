"""The contenders of ``python -m playground bench``: one measured generation each, on the same long prompt.

- ``plain``: llama-cpp-python's own ``Llama.generate`` with no eval callback (``run_plain``; ``plain_fa`` is the
  same with flash attention, a reference);
- ``playground``: ``ChatSession.stream`` with every shipped probe live, the default guard policy and one steered
  trait (``run_playground``);
- ``hf``: the transformers backend with forward hooks doing the same probes and steering (``run_hf``).

Every contender generates the same number of new tokens (end-of-generation tokens are masked for plain
llama.cpp; the others get ``max_tokens``), greedy, from an empty KV cache, so time-to-first-token includes the
whole prompt. A ``Run`` is one such generation; a ``Series`` the runs of one contender. The worker processes
(``playground.evals.bench.worker``) and the UI leg build on these.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...chat.session import Playground
from ...prompt.conversation import plan_prompt

FILLER = (
    "The old lighthouse keeper kept a logbook of every ship that passed the cape, the weather at dawn and dusk, "
    "and the small events of island life: a gull with a broken wing, a storm that flooded the cellar, the day "
    "the supply boat arrived two weeks late with letters from the mainland. "
)
STEERED = {"humorous": 0.5}
WARMUP_TOKENS = 4  # tokens of a contender's warm-up run (persona baseline, caches, first-call costs)


def bench_threads() -> int:
    """Threads every contender gets: ``$PLAYGROUND_THREADS``, else the CPU count up to 8."""
    return int(os.environ.get("PLAYGROUND_THREADS", 0)) or max(1, min(os.cpu_count() or 1, 8))


@dataclass
class Run:
    ttft: float
    tokens: int
    total: float

    @property
    def tok_s(self) -> float:
        decode = self.total - self.ttft
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs)) if self.runs else float("nan")


def long_message(backend: Any, pg: Playground, target_tokens: int) -> tuple[str, list[int]]:
    """A user message whose full chat prompt (assistant persona) is about ``target_tokens`` long."""
    persona = pg.catalog.persona("assistant")
    system = pg.system_prompt_for(persona)
    text = "Here is a page from a diary. Continue the story in the same style.\n\n"
    while True:
        plan = plan_prompt(backend, persona, system, [], text, 64)
        if len(plan.tokens) >= target_tokens:
            return text, plan.tokens
        text += FILLER


def _timed(stream: Any) -> Run:
    start = time.perf_counter()
    first, count = None, 0
    for _ in stream:
        count += 1
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return Run(first if first is not None else total, count, total)


def _plain_llama(model_path: str, threads: int, flash_attn: bool = False) -> Any:
    import llama_cpp

    return llama_cpp.Llama(
        model_path=model_path,
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=flash_attn,
        verbose=False,
    )


def run_plain(llm: Any, prompt: list[int], n: int) -> Run:
    import llama_cpp

    eos = [t for t in range(llm.n_vocab()) if llama_cpp.llama_token_is_eog(llm._model.vocab, t)]

    def no_end(_ids: Any, logits: np.ndarray) -> np.ndarray:
        logits[eos] = -np.inf  # same length for every contender
        return logits

    llm.reset()

    def gen() -> Any:
        for i, _tok in enumerate(
            llm.generate(prompt, temp=0.0, repeat_penalty=1.1, logits_processor=llama_cpp.LogitsProcessorList([no_end]))
        ):
            yield i
            if i + 1 >= n:
                return

    return _timed(gen())


def run_playground(pg: Playground, message: str, n: int) -> Run:
    pg.backend._aligned = []  # type: ignore[attr-defined]  # start from an empty cache, like the others
    session = pg.session("assistant")
    tokens = (
        e
        for e in session.stream(message, temperature=0.0, max_tokens=n, steering=STEERED, record=False)
        if e.kind == "token"
    )
    return _timed(tokens)


def run_hf(hf: Any, pg: Playground, prompt: list[int], n: int) -> Run:
    from ...backends.sampling import Sampling

    probes = pg.probes
    steering = pg.steering_for(STEERED)

    def gen() -> Any:
        for step in hf.stream(
            prompt, Sampling(temperature=0.0, max_tokens=n), steering=steering, capture=probes.layers
        ):
            yield probes.score_one(step.hidden)

    return _timed(gen())


def hf_playground(threads: int) -> Playground:
    """The transformers contender: the default model through transformers with forward hooks (the same model id,
    so the same probe and steering vectors), with ``threads`` torch threads here and on the compute thread."""
    import torch

    from ...backends import load_backend
    from ...backends.compute_thread import run_on_compute_thread

    torch.set_num_threads(threads)  # the same number of threads for every contender
    run_on_compute_thread(lambda: torch.set_num_threads(threads))
    return Playground(loaded_backend=load_backend(None, backend="transformers"))

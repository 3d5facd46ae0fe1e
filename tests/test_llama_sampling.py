"""The llama.cpp backend samples as llama-cpp-python's ``Llama.generate`` does (its own decode loop computes the
same repeat penalty and greedy pick in NumPy, and uses llama.cpp's sampler chain with a temperature)."""

from __future__ import annotations

import llama_cpp
import pytest

from playground.backends.compute_thread import run_on_compute_thread
from playground.backends.llama_cpp import SAFE_BATCH, SAFE_UBATCH
from playground.backends.sampling import Sampling
from playground.prompt.chat_template import Message

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def plain_llama(reference_backend):
    """llama-cpp-python on the same file with the backend's batch sizes (no callback, no hand-over)."""
    # Loaded and run on the compute thread like all model work: OpenMP teams started from a second thread slow
    # every later llama.cpp call in the process (docs/FINDINGS.md).
    llm = run_on_compute_thread(
        lambda: llama_cpp.Llama(
            model_path=str(reference_backend.source.path),
            n_ctx=reference_backend.n_ctx,
            n_batch=SAFE_BATCH,
            n_ubatch=SAFE_UBATCH,
            n_threads=reference_backend.llm.n_threads,
            verbose=False,
        )
    )
    yield llm
    run_on_compute_thread(llm.close)


@pytest.fixture(scope="module")
def prompt(reference_backend):
    b = reference_backend
    return b.tokenize(b.template.render([Message("system", "You are a pirate."), Message("user", "Tell me a story.")]))


def _generate(llm, prompt, n, **kw):
    llm.reset()
    out = []
    for token in llm.generate(prompt, **kw):
        if llama_cpp.llama_token_is_eog(llm._model.vocab, token):
            break
        out.append(token)
        if len(out) >= n:
            break
    return out


@pytest.mark.parametrize(
    "sampling",
    [
        Sampling(temperature=0.0, max_tokens=48, repeat_penalty=1.1),
        Sampling(temperature=0.8, max_tokens=48, repeat_penalty=1.1, top_k=40, top_p=0.9, seed=7),
    ],
    ids=["greedy", "temperature-seeded"],
)
def test_replies_match_llama_generate_token_for_token(reference_backend, plain_llama, prompt, sampling):
    reference_backend._aligned = []
    ours = [s.token for s in reference_backend.stream(prompt, sampling)]
    if sampling.seed is not None:
        plain_llama.set_seed(sampling.seed)
    theirs = run_on_compute_thread(
        lambda: _generate(
            plain_llama,
            prompt,
            sampling.max_tokens,
            temp=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            repeat_penalty=sampling.repeat_penalty,
            min_p=0.0,  # the backend's chain has no min-p stage (generate's default is 0.05)
        )
    )
    assert len(ours) > 10
    assert ours == theirs

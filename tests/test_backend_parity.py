"""The two backends and the two llama.cpp evaluation paths agree on the real default model.

Regression guard: llama-cpp-python 0.3.16's AMX kernels computed micro-batches of 32+ tokens wrongly (logits
correlated 0.88 with token-by-token evaluation). The project's portable build has no AMX kernels; a build that
has them keeps micro-batches at 31 tokens (backends/llama_build.py). These tests fail if either regresses.
"""

from __future__ import annotations

import numpy as np
import pytest

from playground.backends import load_backend
from playground.backends.sampling import Sampling
from playground.errors import ModelError
from playground.prompt.chat_template import Message
from playground.steering.probes import ProbeSet
from playground.steering.store import VectorStore

LONG_SYSTEM = (
    "You are a friendly assistant who explains things clearly, gives practical advice and keeps answers "
    "short. You never make things up and you say so when you are unsure."
)


@pytest.fixture(scope="module")
def hf_backend():
    return load_backend(None, backend="transformers")


@pytest.fixture(scope="module")
def sample(real_backend):
    text = real_backend.template.render(
        [Message("system", LONG_SYSTEM), Message("user", "How do I keep my houseplants alive in winter?")]
    )
    prompt = real_backend.tokenize(text)
    assert len(prompt) > 40  # more than one micro-batch (31 or 32 tokens)
    steps = list(real_backend.stream(prompt, Sampling(temperature=0, max_tokens=40), capture=[5, 15, 25]))
    return prompt, steps


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)).mean())


def test_streamed_and_teacher_forced_activations_agree(real_backend, sample):
    prompt, steps = sample
    tokens = [s.token for s in steps]
    forced = real_backend.hidden_states(prompt + tokens, [5, 15, 25])
    start = len(prompt) - 1
    for layer in (5, 15, 25):
        streamed = np.stack([s.hidden[layer] for s in steps])
        assert _rel(streamed, forced[layer][start : start + len(tokens)]) < 0.02, layer


def test_llama_cpp_matches_transformers_activations_and_logprobs(real_backend, hf_backend, sample):
    prompt, steps = sample
    tokens = prompt + [s.token for s in steps]
    a = real_backend.hidden_states(tokens, [5, 15, 25])
    b = hf_backend.hidden_states(tokens, [5, 15, 25])
    for layer in (5, 15, 25):
        assert _rel(a[layer], b[layer]) < 0.05, layer  # Q4_1 weights vs their float dequantisation
    lp_a = real_backend.token_logprobs(tokens, len(prompt))
    lp_b = hf_backend.token_logprobs(tokens, len(prompt))
    assert lp_a.shape == lp_b.shape == (len(steps),)
    assert np.corrcoef(lp_a, lp_b)[0, 1] > 0.99
    assert abs(lp_a.mean() - lp_b.mean()) < 0.1


def test_probe_readouts_agree_across_backends(real_backend, hf_backend, sample):
    prompt, steps = sample
    tokens = prompt + [s.token for s in steps]
    probes = ProbeSet(VectorStore("smollm2-135m").all())
    start, end = len(prompt) - 1, len(tokens) - 1
    za = probes.score_rows({l: r[start:end] for l, r in real_backend.hidden_states(tokens, probes.layers).items()})
    zb = probes.score_rows({l: r[start:end] for l, r in hf_backend.hidden_states(tokens, probes.layers).items()})
    streamed = [
        probes.score_one(s.hidden)
        for s in real_backend.stream(prompt, Sampling(temperature=0, max_tokens=40), capture=probes.layers)
    ]
    for trait in probes.vectors:
        assert np.corrcoef(za[trait], zb[trait])[0, 1] > 0.95, trait
        live = np.array([r[trait] for r in streamed])
        assert np.corrcoef(live, za[trait])[0, 1] > 0.95, trait
        assert abs(live.mean() - za[trait].mean()) < 0.2, trait


def test_token_pieces_longer_than_32_bytes_are_not_lost(real_backend):
    long_pieces = [t for t in range(49152) if len(real_backend.token_bytes(t)) > 32]
    assert len(long_pieces) >= 10  # SmolLM2 has dozens (runs of spaces, dashes, '=')
    text = " " * 40 + "x"
    tokens = real_backend.tokenize(text)
    assert b"".join(real_backend.token_bytes(t) for t in tokens).decode() == text


def test_logprobs_validate_start(real_backend):
    from playground.errors import ModelError

    with pytest.raises(ModelError, match="start must be"):
        real_backend.token_logprobs([1, 2, 3], 0)


def test_prefix_cache_reuse_is_exact(real_backend):
    """A second chat turn reuses the cached prompt and still gives bit-identical tokens and activations."""
    system = Message("system", LONG_SYSTEM)
    first = [system, Message("user", "Name three rivers in Europe.")]
    p1 = real_backend.tokenize(real_backend.template.render(first))
    greedy = Sampling(temperature=0, max_tokens=24)
    reply = [s.token for s in real_backend.stream(p1, greedy)]
    text = b"".join(real_backend.token_bytes(t) for t in reply).decode("utf-8", errors="replace")
    second = first + [Message("assistant", text), Message("user", "Which one is the longest?")]
    p2 = real_backend.tokenize(real_backend.template.render(second))
    assert real_backend._reusable_prefix(p2) >= 31  # the cache is used
    warm = list(real_backend.stream(p2, greedy, capture=[10, 20]))
    real_backend._aligned = []  # forget the cache: evaluate from scratch
    cold = list(real_backend.stream(p2, greedy, capture=[10, 20]))
    assert [s.token for s in warm] == [s.token for s in cold]
    for a, b in zip(warm, cold, strict=True):
        assert np.array_equal(a.hidden[10], b.hidden[10]) and np.array_equal(a.hidden[20], b.hidden[20])


def test_reads_after_a_generation_reuse_its_cache_exactly(real_backend):
    """hidden_states(start=...) and token_logprobs right after generating a reply reuse the prompt's cached
    keys/values and still give bit-identical numbers to a fresh evaluation (extraction relies on this)."""
    prompt = real_backend.tokenize(
        real_backend.template.render([Message("system", LONG_SYSTEM), Message("user", "Name three rivers.")])
    )
    reply = [s.token for s in real_backend.stream(prompt, Sampling(temperature=0, max_tokens=20))]
    tokens = prompt + reply
    start = len(prompt) - 1
    assert real_backend._reusable_prefix(tokens) >= 31
    warm = real_backend.hidden_states(tokens, [4, 12], start=start)
    warm_lp = real_backend.token_logprobs(tokens, len(prompt))
    real_backend._aligned = []
    cold = real_backend.hidden_states(tokens, [4, 12])
    real_backend._aligned = []
    cold_lp = real_backend.token_logprobs(tokens, len(prompt))
    assert warm[4].shape == (len(tokens) - start, real_backend.d_model)
    assert np.array_equal(warm[4], cold[4][start:]) and np.array_equal(warm[12], cold[12][start:])
    assert np.array_equal(warm_lp, cold_lp)
    with pytest.raises(ModelError, match="start must be"):
        real_backend.hidden_states(tokens, [4], start=len(tokens) + 1)


def test_score_tokens_is_logprobs_and_rows_in_one_pass(real_backend, hf_backend):
    """score_tokens gives exactly token_logprobs and hidden_states' rows at the predicting positions."""
    prompt = real_backend.tokenize(
        real_backend.template.render([Message("system", LONG_SYSTEM), Message("user", "Name two seas.")])
    )
    reply = [s.token for s in real_backend.stream(prompt, Sampling(temperature=0, max_tokens=12))]
    tokens = prompt + reply
    for backend in (real_backend, hf_backend):
        backend._aligned = []
        logprobs, rows = backend.score_tokens(tokens, len(prompt), [6, 14])
        backend._aligned = []
        assert np.array_equal(logprobs, backend.token_logprobs(tokens, len(prompt)))
        backend._aligned = []
        fresh = backend.hidden_states(tokens, [6, 14])
        assert rows[6].shape == (len(reply), backend.d_model)
        assert np.allclose(rows[14], fresh[14][len(prompt) - 1 : len(tokens) - 1], atol=1e-5)

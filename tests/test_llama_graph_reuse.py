"""llama.cpp 0.3.16 reuses a compute graph when the batch has the same shape, and takes a context's control
vector as unchanged when it is the same object, even after its layer range changed. A graph built without
steering (or with other layers) must never serve a steered pass: the backend keeps the graph's shape the same
whatever the steering (docs/FINDINGS.md)."""

from __future__ import annotations

import numpy as np
import pytest

from playground.backends.base import Steering
from playground.backends.sampling import Sampling
from playground.prompt.chat_template import Message

pytestmark = pytest.mark.model


def _unit(backend, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(backend.d_model).astype(np.float32)
    return v / np.linalg.norm(v)


def _read(backend, tokens, steering):
    backend._aligned = []
    return backend.hidden_states(tokens, [20], steering=steering)[20]


def test_a_steering_change_between_reads_of_the_same_shape_takes_effect(real_backend):
    b = real_backend
    tokens = b.tokenize("The sea was calm that morning.")
    other = b.tokenize("A different text of another length, so the graph is rebuilt.")
    steer_a = Steering({4: 8.0 * _unit(b, 1)})
    steer_b = Steering({12: 8.0 * _unit(b, 2)})
    _read(b, other, steer_b)
    want = _read(b, tokens, steer_b)  # first pass of this shape: a fresh graph
    for before in (None, steer_a):
        _read(b, tokens, before)  # same shape, other steering: the graph would be reused
        got = _read(b, tokens, steer_b)
        assert np.array_equal(got, want), f"steering at layer 12 lost after a read with {before}"
    assert not np.allclose(_read(b, tokens, None), want)  # the steering does change these rows


def test_replies_do_not_depend_on_the_steering_of_the_previous_reply(real_backend):
    """Generation steps all have one token: every step after the first would reuse one graph. A reply is
    compared by its tokens and by the layer-20 rows captured while it was generated: whether a steering
    changes the greedy *tokens* within 16 steps is chance that differs between builds (on the AVX-only
    build strength 6 at layer 9 did not, 8 did), while the rows always move."""
    b = real_backend
    prompt = b.tokenize(b.template.render([Message("system", "You are a pirate."), Message("user", "Hi there!")]))
    steer = Steering({9: 6.0 * _unit(b, 3)})
    sampling = Sampling(temperature=0, max_tokens=16, repeat_penalty=1.1)

    def reply(steering):
        b._aligned = []
        steps = list(b.stream(prompt, sampling, steering=steering, capture=[20]))
        return [s.token for s in steps], np.stack([s.hidden[20] for s in steps])

    def same(a, b_):
        return a[0] == b_[0] and np.array_equal(a[1], b_[1])

    steered = reply(steer)
    plain = reply(None)
    assert not np.allclose(steered[1][0], plain[1][0])  # the steering changes the first step's rows
    assert same(reply(steer), steered)  # after an unsteered reply
    assert not np.allclose(reply(Steering({20: 6.0 * _unit(b, 4)}))[1][0], steered[1][0])
    assert same(reply(steer), steered)  # after a reply steered at other layers
    assert same(reply(None), plain)

"""Handing a prompt's keys/values from the prompt context to the flash-attention generation context."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest

from playground.backends.decode_check import CHECK_TEXTS, compare_logits, within_tolerance
from playground.backends.kv_transfer import untranspose_values
from playground.backends.sampling import Sampling
from playground.errors import ModelError
from playground.prompt.chat_template import Message

F16 = 1  # ggml type id; only carried through


def _state(keys: list[np.ndarray], values: list[np.ndarray], transposed: bool, positions: list[int]) -> np.ndarray:
    """A sequence state as llama.cpp 0.3.16 writes it (see kv_transfer.py), for ``cells`` x ``n_embd`` arrays."""
    cells = len(positions)
    out = [struct.pack("<II", 1, cells)]
    out += [struct.pack("<iIi", p, 1, 0) for p in positions]
    out.append(struct.pack("<II", int(transposed), len(keys)))
    for k in keys:
        out.append(struct.pack("<iQ", F16, k.shape[1] * 2) + k.astype(np.uint16).tobytes())
    for v in values:
        if transposed:
            out.append(struct.pack("<iII", F16, 2, v.shape[1]) + np.ascontiguousarray(v.T).astype(np.uint16).tobytes())
        else:
            out.append(struct.pack("<iQ", F16, v.shape[1] * 2) + v.astype(np.uint16).tobytes())
    return np.frombuffer(b"".join(out), dtype=np.uint8).copy()


def _layers(seed: int, n_layer: int = 3, cells: int = 5, n_embd: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65535, size=(cells, n_embd)) for _ in range(n_layer)]


def test_transposed_values_become_one_row_per_cell():
    keys, values, positions = _layers(1), _layers(2), [0, 1, 2, 7, 8]
    blob = _state(keys, values, transposed=True, positions=positions)
    untranspose_values(blob)
    assert blob.tobytes() == _state(keys, values, transposed=False, positions=positions).tobytes()


def test_a_state_already_in_rows_is_left_alone():
    blob = _state(_layers(3), _layers(4), transposed=False, positions=[0, 1, 2, 3, 4])
    before = blob.tobytes()
    untranspose_values(blob)
    assert blob.tobytes() == before


@pytest.mark.parametrize("damage", ["truncate", "trailing", "two_streams"])
def test_an_unexpected_layout_is_refused_and_left_unchanged(damage):
    blob = _state(_layers(5), _layers(6), transposed=True, positions=[0, 1, 2, 3, 4])
    if damage == "truncate":
        blob = blob[:-3].copy()
    elif damage == "trailing":
        blob = np.concatenate([blob, np.zeros(2, np.uint8)])
    else:
        blob[:4] = np.frombuffer(struct.pack("<I", 2), np.uint8)
    before = blob.tobytes()
    with pytest.raises(ModelError):
        untranspose_values(blob)
    assert blob.tobytes() == before  # checked before anything is rewritten


# -- on the real model ------------------------------------------------------------------------------------


def _reply(backend, prompt, n=40, flash=False, **kw):
    """Greedy reply; ``flash=True`` hands over to the flash-attention context whatever this CPU's choice."""
    backend._aligned = []
    path = backend.flash_decoding() if flash else contextlib.nullcontext()
    with path:
        steps = list(backend.stream(prompt, Sampling(temperature=0, max_tokens=n, repeat_penalty=1.1), **kw))
    return [s.token for s in steps], steps


@pytest.mark.model
def test_generation_after_the_hand_over_matches_the_prompt_context(real_backend, reference_backend):
    """Teacher-forced, so greedy forks cannot amplify rounding: the flash-attention path's logits stay as close to
    the reference path's as llama.cpp's own batched evaluation of the same tokens does (holds on any CPU; the
    greedy replies themselves may fork after a few tokens on some CPUs, which is rounding, not a defect)."""
    assert real_backend.flash_decode and not reference_backend.flash_decode
    check = real_backend.check_decoding_paths(CHECK_TEXTS[2:4])  # other texts than the start-up check's
    assert check.positions >= 150
    assert check.passed, check.summary()
    # The first token comes from the prompt context on both paths: identical token and activations.
    prompt = real_backend.tokenize(
        real_backend.template.render(
            [Message("system", "You are a helpful assistant."), Message("user", "Explain how tides work.")]
        )
    )
    layers = [8, 20]
    fast_tokens, fast = _reply(real_backend, prompt, n=2, flash=True, capture=layers)
    slow_tokens, slow = _reply(reference_backend, prompt, n=2, capture=layers)
    assert fast_tokens[0] == slow_tokens[0]
    assert all(np.array_equal(fast[0].hidden[l], slow[0].hidden[l]) for l in layers)


@pytest.mark.model
def test_a_corrupt_hand_over_would_fail_the_check(real_backend):
    """The check can fail: logits from an unrelated sequence (what a broken hand-over would give) are far outside
    the tolerance that the real flash path meets."""
    question, reply = CHECK_TEXTS[0]
    prompt = real_backend.tokenize(real_backend.template.render([Message("user", question)]))
    tokens = prompt + real_backend.tokenize(reply)
    reference = real_backend.teacher_forced_logits(tokens, len(prompt), "reference")
    batched = real_backend.teacher_forced_logits(tokens, len(prompt), "batched")
    shifted = np.roll(reference, 7, axis=0)  # each position gets another position's logits
    floor = compare_logits([reference], [batched])
    assert within_tolerance(compare_logits([reference], [batched]), floor)
    assert not within_tolerance(compare_logits([reference], [shifted]), floor)


@pytest.mark.model
def test_the_reply_is_the_same_with_and_without_a_cached_prefix(real_backend):
    prompt = real_backend.tokenize(
        real_backend.template.render([Message("system", "You are a pirate."), Message("user", "Hello!")])
    )
    fresh, _ = _reply(real_backend, prompt, n=24)
    again = list(real_backend.stream(prompt, Sampling(temperature=0, max_tokens=24, repeat_penalty=1.1)))
    assert [s.token for s in again] == fresh


@pytest.mark.model
def test_a_large_copy_buffer_is_let_go_and_the_next_copy_still_works(real_backend):
    prompt = real_backend.tokenize(
        real_backend.template.render([Message("system", "You are a robot."), Message("user", "Count to five.")])
    )
    kept, _ = _reply(real_backend, prompt, n=12, flash=True)
    copier = real_backend._copier
    before = copier.keep_bytes
    try:
        copier.keep_bytes = 0  # every buffer counts as large
        first, _ = _reply(real_backend, prompt, n=12, flash=True)
        assert copier._buffer.nbytes == 0
        again, _ = _reply(real_backend, prompt, n=12, flash=True)
    finally:
        copier.keep_bytes = before
    assert first == again == kept


@pytest.mark.model
def test_the_path_is_fixed_when_the_stream_is_asked_for(real_backend, reference_backend, monkeypatch):
    """A stream created inside reference_decoding() and consumed after it still takes the reference path: no
    hand-over to the flash-attention context, and the reference backend's exact tokens (whether or not the two
    paths' greedy replies fork on this CPU)."""
    sampling = Sampling(temperature=0, max_tokens=24, repeat_penalty=1.1)
    prompt = real_backend.tokenize(
        real_backend.template.render(
            [Message("system", "You are a helpful assistant."), Message("user", "How should I respond to rudeness?")]
        )
    )
    reference, _ = _reply(reference_backend, prompt, n=24)
    hand_overs = []
    original = real_backend._hand_over_prompt
    monkeypatch.setattr(real_backend, "_hand_over_prompt", lambda ctx: hand_overs.append(1) or original(ctx))
    monkeypatch.setattr(real_backend, "_hand_over", True)  # chat's path where flash attention is faster
    real_backend._aligned = []
    with real_backend.reference_decoding():
        lazy = real_backend.stream(prompt, sampling)
    assert [s.token for s in lazy] == reference
    assert hand_overs == []
    real_backend._aligned = []
    assert len(list(real_backend.stream(prompt, sampling))) > 1 and hand_overs == [1]  # outside: handed over

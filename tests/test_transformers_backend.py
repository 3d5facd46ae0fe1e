"""The transformers backend: hooks, steering, capture and sampling on a tiny random llama; parity on the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from playground.backends.base import Backend, Steering
from playground.backends.model_source import ModelSource, embedded_gguf
from playground.backends.sampling import Sampling
from playground.backends.transformers import TransformersBackend
from playground.errors import ModelError
from playground.prompt.chat_template import Message

from .tiny_model import save_tiny_llama

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")  # tiny models built on this thread

GREEDY = Sampling(temperature=0.0, max_tokens=12, repeat_penalty=1.0)
TEXT = "Hello there, é 日本 🤖\n  indented  "


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> TransformersBackend:
    return TransformersBackend(ModelSource("hf", tiny_dir, "tiny-llama"))


@pytest.fixture(scope="module")
def prompt(tiny: TransformersBackend) -> list[int]:
    return tiny.tokenize(tiny.template.render([Message("system", "Be terse."), Message("user", "Hi!")]))


def _hooks_left(backend: TransformersBackend) -> int:
    return sum(len(layer._forward_hooks) for layer in backend._layers)


def _tokens(backend: TransformersBackend, prompt: list[int], sampling: Sampling = GREEDY, **kw) -> list[int]:
    return [step.token for step in backend.stream(prompt, sampling, **kw)]


def test_attributes(tiny: TransformersBackend) -> None:
    assert isinstance(tiny, Backend)
    assert (tiny.name, tiny.model_id, tiny.n_layers, tiny.d_model, tiny.n_ctx) == (
        "transformers",
        "tiny-llama",
        3,
        32,
        512,
    )
    assert not tiny.template.is_fallback
    assert tiny.is_end(tiny.tokenizer.convert_tokens_to_ids("<|im_end|>"))
    assert tiny.is_end(tiny.tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    assert not tiny.is_end(tiny.tokenize("Hello")[0])


def test_tokenize_and_token_bytes(tiny: TransformersBackend) -> None:
    ids = tiny.tokenize("<|im_start|>user\n" + TEXT + "<|im_end|>")
    assert ids[0] == tiny.tokenizer.convert_tokens_to_ids("<|im_start|>")  # parsed, and no BOS added
    assert tiny.tokenize(TEXT)[0] != tiny.tokenizer.bos_token_id
    assert b"".join(tiny.token_bytes(t) for t in tiny.tokenize(TEXT)).decode("utf-8") == TEXT
    assert tiny.token_bytes(ids[0]) == b""  # control tokens carry no text, as in llama.cpp
    partial = [t for t in tiny.tokenize("🤖") if len(tiny.token_bytes(t)) < 4]
    assert partial, "the emoji should split into byte pieces"


def test_hooks_removed_after_calls_and_exceptions(tiny: TransformersBackend, prompt: list[int]) -> None:
    steer = Steering({0: np.ones(32, np.float32), 2: np.ones(32, np.float32)})
    _tokens(tiny, prompt, steering=steer, capture=[0, 1, 2])
    tiny.hidden_states(prompt, [0, 1], steering=steer)
    assert _hooks_left(tiny) == 0
    with pytest.raises(RuntimeError, match="boom"):
        with tiny._hooks(steer, [1]):
            assert _hooks_left(tiny) == 3
            raise RuntimeError("boom")
    assert _hooks_left(tiny) == 0
    with pytest.raises(ModelError, match="expected 32"):
        tiny.hidden_states(prompt, [0], steering=Steering({0: np.ones(31, np.float32)}))
    with pytest.raises(ModelError, match="out of range"):
        tiny.hidden_states(prompt, [3])
    assert _hooks_left(tiny) == 0


def test_hooks_not_held_while_stream_is_paused(tiny: TransformersBackend, prompt: list[int]) -> None:
    gen = tiny.stream(prompt, GREEDY, steering=Steering({1: np.ones(32, np.float32)}), capture=[1])
    next(gen)
    assert _hooks_left(tiny) == 0  # a concurrent call on the same model sees no steering
    gen.close()


def test_zero_steering_is_a_no_op(tiny: TransformersBackend, prompt: list[int]) -> None:
    zero = Steering({0: np.zeros(32, np.float32), 1: np.zeros(32, np.float32)})
    assert _tokens(tiny, prompt, steering=zero) == _tokens(tiny, prompt)
    np.testing.assert_array_equal(tiny.hidden_states(prompt, [2], steering=zero)[2], tiny.hidden_states(prompt, [2])[2])


def test_steering_adds_at_every_position(tiny: TransformersBackend, prompt: list[int]) -> None:
    v = np.random.default_rng(1).normal(size=32).astype(np.float32)
    base = tiny.hidden_states(prompt, [0, 1, 2])
    steered = tiny.hidden_states(prompt, [0, 1, 2], steering=Steering({1: 3 * v}))
    np.testing.assert_array_equal(steered[0], base[0])  # blocks before the steered one are untouched
    np.testing.assert_allclose(steered[1] - base[1], np.broadcast_to(3 * v, base[1].shape), atol=1e-5)
    assert not np.allclose(steered[2], base[2], atol=1e-3)
    assert _tokens(tiny, prompt, steering=Steering({1: 50 * v})) != _tokens(tiny, prompt)
    # The same addition, however it is built, gives the same output.
    twice = Steering({1: v}).combined(Steering({1: v}))
    assert _tokens(tiny, prompt, steering=twice) == _tokens(tiny, prompt, steering=Steering({1: 2 * v}))
    assert _tokens(tiny, prompt, steering=Steering({1: v * 2})) == _tokens(tiny, prompt, steering=Steering({1: 2 * v}))


def test_captured_hidden_matches_teacher_forcing(tiny: TransformersBackend, prompt: list[int]) -> None:
    steer = Steering({1: np.full(32, 0.5, np.float32)})
    steps = list(tiny.stream(prompt, GREEDY, steering=steer, capture=[0, 2]))
    assert len(steps) >= 3
    tokens = [s.token for s in steps]
    for i, step in enumerate(steps):
        assert step.hidden is not None and set(step.hidden) == {0, 2}
        full = tiny.hidden_states(prompt + tokens[:i], [0, 2], steering=steer)
        for layer in (0, 2):
            assert step.hidden[layer].shape == (32,) and step.hidden[layer].dtype == np.float32
            np.testing.assert_allclose(step.hidden[layer], full[layer][-1], atol=1e-4)
    assert all(s.hidden is None for s in tiny.stream(prompt, GREEDY))


def test_hidden_states_follow_the_layer_convention(tiny: TransformersBackend, prompt: list[int]) -> None:
    ours = tiny.hidden_states(prompt, [0, 1, 2])
    with torch.inference_mode():
        hf = tiny.model(input_ids=torch.tensor([prompt]), output_hidden_states=True).hidden_states
    assert ours[0].shape == (len(prompt), 32) and ours[0].dtype == np.float32
    for layer in (0, 1):
        np.testing.assert_allclose(ours[layer], hf[layer + 1][0].numpy(), atol=1e-5)
    # HF replaces the last entry by the final-norm output; ours is the raw block output (llama.cpp l_out).
    with torch.inference_mode():
        normed = tiny.model.model.norm(torch.from_numpy(ours[2])).numpy()
    np.testing.assert_allclose(normed, hf[3][0].numpy(), atol=1e-4)


def test_max_tokens_and_greedy_determinism(tiny: TransformersBackend, prompt: list[int]) -> None:
    assert len(_tokens(tiny, prompt, GREEDY.merged(max_tokens=5))) == 5
    assert len(_tokens(tiny, prompt, GREEDY.merged(max_tokens=1))) == 1
    assert _tokens(tiny, prompt) == _tokens(tiny, prompt)
    penalised = GREEDY.merged(repeat_penalty=1.5, max_tokens=20)
    out = _tokens(tiny, prompt, penalised)
    assert len(out) == 20 and out == _tokens(tiny, prompt, penalised)


def test_first_token_is_never_an_end_token(tiny: TransformersBackend, prompt: list[int]) -> None:
    bias = torch.zeros(tiny.model.config.vocab_size)
    bias[tiny.tokenizer.convert_tokens_to_ids("<|im_end|>")] = 1e4  # the end token dominates every position
    handle = tiny.model.lm_head.register_forward_hook(lambda module, args, out: out + bias)
    try:
        assert len(_tokens(tiny, prompt, GREEDY.merged(max_tokens=5))) == 1
    finally:
        handle.remove()


def test_seeded_sampling_is_reproducible(tiny: TransformersBackend, prompt: list[int]) -> None:
    sampling = Sampling(temperature=1.0, top_k=40, top_p=0.95, max_tokens=10, repeat_penalty=1.1, seed=7)
    first = _tokens(tiny, prompt, sampling)
    assert first == _tokens(tiny, prompt, sampling)
    others = {tuple(_tokens(tiny, prompt, sampling.merged(seed=s))) for s in range(1, 6)}
    assert len(others | {tuple(first)}) > 1


def test_load_errors_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="could not load"):
        TransformersBackend(ModelSource("hf", tmp_path, "empty"))


# -- the real default model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol() -> TransformersBackend:
    return TransformersBackend(ModelSource("gguf", embedded_gguf(), "smollm2-135m"))


@pytest.mark.model
def test_real_model_matches_llama_cpp_tokens(smol: TransformersBackend, real_backend) -> None:
    assert (smol.n_layers, smol.d_model) == (real_backend.n_layers, real_backend.d_model) == (30, 576)
    messages = [Message("system", "You are a pirate. " + TEXT), Message("user", "What's 2+2?  Tell me\n\nplease")]
    text = real_backend.template.render(messages)
    assert smol.template.render(messages) == text
    prompt = smol.tokenize(text)
    assert prompt == real_backend.tokenize(text)
    for token in range(0, smol.tokenizer.vocab_size, 7):
        assert smol.token_bytes(token) == real_backend.token_bytes(token), token
    reply = [step.token for step in smol.stream(prompt, GREEDY.merged(max_tokens=16))]
    assert reply and b"".join(smol.token_bytes(t) for t in reply).decode("utf-8", errors="replace").strip()

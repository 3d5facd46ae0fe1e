"""Prompt planning: the model's own chat template, history, and trimming when the context is full."""

from __future__ import annotations

import pytest

from playground.definitions.personas import Catalog
from playground.errors import ModelError
from playground.prompt.chat_template import ChatTemplate, Message
from playground.prompt.conversation import Turn, plan_prompt


class WordBackend:
    """A stand-in tokenizer (one token per word) to test context arithmetic exactly."""

    name = "words"
    model_id = "words"
    n_layers = 1
    d_model = 1

    def __init__(self, n_ctx: int):
        self.n_ctx = n_ctx
        self.template = ChatTemplate(None)

    def tokenize(self, text: str) -> list[int]:
        return [len(w) for w in text.split()]

    def token_bytes(self, token: int) -> bytes:
        return b"w" * token + b" "


@pytest.fixture(scope="module")
def persona():
    return Catalog().persona("assistant")


def test_everything_fits(persona):
    history = [Turn("hi there", "hello")]
    plan = plan_prompt(WordBackend(1000), persona, persona.system_prompt, history, "next", 10, greeting="Hey")
    assert plan.notices == [] and plan.dropped_turns == 0
    roles = [m.role for m in plan.messages]
    assert roles[0] == "system" and roles[-1] == "user" and roles.count("user") == 2
    assert roles[1] == "assistant"  # the greeting


def test_oldest_turns_are_dropped_with_a_notice(persona):
    history = [Turn(f"question number {i} " * 5, f"answer {i} " * 5) for i in range(40)]
    backend = WordBackend(400)
    plan = plan_prompt(backend, persona, persona.system_prompt, history, "latest question", 100)
    assert 0 < plan.dropped_turns < 40
    assert len(plan.tokens) <= 300
    assert "oldest" in plan.notices[0]
    kept_users = [m.content for m in plan.messages if m.role == "user"]
    assert kept_users[-1] == "latest question"
    assert kept_users[-2].startswith("question number 39")
    assert plan.messages[0].role == "system"


def test_too_long_message_keeps_its_end(persona):
    backend = WordBackend(300)
    plan = plan_prompt(backend, persona, persona.system_prompt, [], "word " * 1000 + "END", 50)
    assert len(plan.tokens) <= 250
    assert any("too long" in n for n in plan.notices)


def test_persona_larger_than_context_is_a_clear_error(persona):
    with pytest.raises(ModelError, match="Shorten the system prompt"):
        plan_prompt(WordBackend(20), persona, persona.system_prompt, [], "hi", 10)


def test_strict_templates_get_the_system_prompt_folded_in():
    strict = ChatTemplate(
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    )
    backend = WordBackend(1000)
    backend.template = strict
    persona = Catalog().persona("assistant")
    plan = plan_prompt(backend, persona, "SYS PROMPT", [], "hello", 10)
    assert plan.tokens  # rendered without the system role, prompt folded into the first user turn


def test_real_template_from_gguf(real_backend):
    text = real_backend.template.render([Message("system", "S"), Message("user", "U")])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert not real_backend.template.is_fallback


@pytest.mark.model
def test_long_conversation_on_the_real_model_never_crashes():
    from playground.backends import load_backend
    from playground.chat.session import Playground

    # a 1024-token window: the same trimming as the default 4096, a quarter of the prompt to read (~25 s -> ~7 s)
    backend = load_backend(None, n_ctx=1024)
    try:
        session = Playground(loaded_backend=backend).session("assistant")
        session.history = [
            Turn("Tell me a long story about the sea. " * 20, "Once upon a time " * 60) for _ in range(30)
        ]
        result = session.send("And then?", max_tokens=8, temperature=0)
        assert any("oldest" in n for n in result.notices)
        assert result.reply.strip() and result.prompt_tokens + 8 <= backend.n_ctx == 1024
    finally:
        backend.close()

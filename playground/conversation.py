"""Conversation history and fitting a persona's prompt into the model's context window."""

from __future__ import annotations

from dataclasses import dataclass, field

from .backends.base import Backend
from .chat_template import Message
from .errors import ModelError
from .personas import Persona, render_placeholders


@dataclass
class Turn:
    user: str
    assistant: str


@dataclass
class PromptPlan:
    """What is sent to the model: token ids, the messages behind them and any notices for the user."""

    tokens: list[int]
    messages: list[Message]
    notices: list[str] = field(default_factory=list)
    dropped_turns: int = 0


def persona_messages(persona: Persona, system_prompt: str, user_name: str = "User") -> list[Message]:
    """The system message: prompt plus few-shot examples, with {{char}}/{{user}} filled in.

    Examples are written into the system prompt rather than sent as fake turns: measured on the
    135M default model, example turns made replies curt and off-topic ("You can't."), while the
    same examples as a "how you reply" block kept answers on-topic.
    """
    text = system_prompt.strip()
    if persona.examples:
        shots = "\n".join(f"User: {ex.user}\nYou: {ex.assistant}" for ex in persona.examples)
        text = f"{text}\n\nExamples of how you reply:\n{shots}"
    return [Message("system", render_placeholders(text, persona.name, user_name))]


def history_messages(history: list[Turn], greeting: str = "") -> list[Message]:
    out: list[Message] = []
    if greeting:
        out.append(Message("assistant", greeting))
    for turn in history:
        out += [Message("user", turn.user), Message("assistant", turn.assistant)]
    return out


def _render(backend: Backend, messages: list[Message]) -> list[int]:
    try:
        text = backend.template.render(messages)
    except ModelError:
        # Some templates refuse a system role or a leading assistant turn: fold them into the first user turn.
        text = backend.template.render(_fold_for_strict_templates(messages))
    return backend.tokenize(text)


def _fold_for_strict_templates(messages: list[Message]) -> list[Message]:
    preface = [m.content for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    while rest and rest[0].role == "assistant":
        preface.append(rest.pop(0).content)
    if rest and preface:
        rest[0] = Message(rest[0].role, "\n\n".join(preface + [rest[0].content]))
    return rest


def plan_prompt(
    backend: Backend,
    persona: Persona,
    system_prompt: str,
    history: list[Turn],
    user_message: str,
    max_new_tokens: int,
    greeting: str = "",
) -> PromptPlan:
    """Build the prompt; drop the oldest turns (never the persona) until the reply fits."""
    budget = backend.n_ctx - max_new_tokens
    head = persona_messages(persona, system_prompt)
    kept = list(history)
    dropped = 0
    notices: list[str] = []
    show_greeting = greeting
    while True:
        messages = head + history_messages(kept, show_greeting) + [Message("user", user_message)]
        tokens = _render(backend, messages)
        if len(tokens) <= budget:
            break
        if show_greeting and not kept:
            show_greeting = ""
            continue
        if kept:
            kept.pop(0)
            dropped += 1
            continue
        # Even the persona plus this one message is too long: keep the end of the message.
        over = len(tokens) - budget
        user_tokens = backend.tokenize(user_message)
        if over >= len(user_tokens):
            raise ModelError(
                f"the persona's prompt alone needs {len(tokens) - len(user_tokens)} tokens; the context holds "
                f"{backend.n_ctx} with {max_new_tokens} reserved for the reply. Shorten the system prompt or examples"
            )
        keep = user_tokens[over + 8 :]
        user_message = b"".join(backend.token_bytes(t) for t in keep).decode("utf-8", errors="ignore")
        notices.append(
            f"Your message was too long for the model's context ({backend.n_ctx} tokens); "
            f"only its last {len(keep)} tokens were used."
        )
    if dropped:
        notices.insert(
            0,
            f"Context full: the oldest {dropped} turn(s) were left out of the prompt "
            f"(the model sees the last {len(kept)}).",
        )
    return PromptPlan(tokens=tokens, messages=messages, notices=notices, dropped_turns=dropped)

"""Conversation history and fitting a persona's prompt into the model's context window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..backends.base import Backend
from ..definitions.personas import Persona, render_placeholders
from ..errors import ModelError
from .chat_template import Message
from .lorebook import LoreEntry, activate

# Without a token_budget in the lorebook, lore may take at most this share of the context window.
LORE_CONTEXT_SHARE = 0.25


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
    lore: list[str] = field(default_factory=list)  # labels of the lorebook entries inserted
    reply_start: str = ""  # the prompt ends with this start of the reply, which the model continues


def persona_messages(
    persona: Persona, system_prompt: str, user_name: str = "User", lore: Sequence[LoreEntry] = ()
) -> list[Message]:
    """The system message: lore, prompt and few-shot examples, with {{char}}/{{user}} filled in.

    Examples are written into the system prompt rather than sent as fake turns: measured on the
    135M default model, example turns made replies curt and off-topic ("You can't."), while the
    same examples as a "how you reply" block kept answers on-topic. Lorebook entries go before the
    prompt (position ``before_char``) or after it, before the examples (``after_char``).
    """
    before = [e.content.strip() for e in lore if e.position == "before_char" and e.content.strip()]
    after = [e.content.strip() for e in lore if e.position != "before_char" and e.content.strip()]
    text = "\n\n".join(before + [system_prompt.strip()] + after)
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


def _render(backend: Backend, messages: list[Message], reply_start: str = "") -> list[int]:
    try:
        text = backend.template.render(messages)
    except ModelError:
        # Some templates refuse a system role or a leading assistant turn: fold them into the first user turn.
        text = backend.template.render(_fold_for_strict_templates(messages))
    return backend.tokenize(text + reply_start)


def _fold_for_strict_templates(messages: list[Message]) -> list[Message]:
    start = 0
    while start < len(messages) and messages[start].role == "system":
        start += 1
    preface = [m.content for m in messages[:start]]
    rest: list[Message] = []
    for m in messages[start:]:
        if m.role == "system" and rest and rest[-1].role == "user":
            # A later system message (post-history instructions) joins the user turn before it.
            rest[-1] = Message("user", f"{rest[-1].content}\n\n{m.content}")
        elif m.role == "system":
            preface.append(m.content)
        else:
            rest.append(m)
    while rest and rest[0].role == "assistant":
        preface.append(rest.pop(0).content)
    if rest and preface:
        rest[0] = Message(rest[0].role, "\n\n".join(preface + [rest[0].content]))
    return rest


def post_history_messages(persona: Persona, user_name: str = "User") -> list[Message]:
    """The persona's post-history instructions: a system message after the newest user message."""
    text = persona.post_history_instructions.strip()
    return [Message("system", render_placeholders(text, persona.name, user_name))] if text else []


def _lore_for(
    backend: Backend, persona: Persona, history: list[Turn], user_message: str
) -> tuple[list[LoreEntry], list[str]]:
    if persona.lorebook is None:
        return [], []
    recent = [text for turn in history for text in (turn.user, turn.assistant)] + [user_message]
    chosen = activate(
        persona.lorebook,
        recent,
        count_tokens=lambda text: len(backend.tokenize(text)),
        default_budget=int(backend.n_ctx * LORE_CONTEXT_SHARE),
    )
    notices = []
    if chosen.over_budget:
        names = ", ".join(f"'{e.label}'" for e in chosen.over_budget)
        notices.append(f"Lorebook: {len(chosen.over_budget)} entries left out to fit the token budget: {names}")
    return chosen.inserted, notices


def plan_prompt(
    backend: Backend,
    persona: Persona,
    system_prompt: str,
    history: list[Turn],
    user_message: str,
    max_new_tokens: int,
    greeting: str = "",
    reply_start: str = "",
) -> PromptPlan:
    """Build the prompt; drop the oldest turns (never the persona) until the reply fits. With ``reply_start``,
    the prompt ends with that start of the reply (not closed), so the model continues it ("Continue")."""
    budget = backend.n_ctx - max_new_tokens
    lore, notices = _lore_for(backend, persona, history, user_message)
    head = persona_messages(persona, system_prompt, lore=lore)
    tail = post_history_messages(persona)
    kept = list(history)
    dropped = 0
    show_greeting = greeting
    while True:
        messages = head + history_messages(kept, show_greeting) + [Message("user", user_message)] + tail
        tokens = _render(backend, messages, reply_start)
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
    lore_labels = [e.label for e in lore]
    return PromptPlan(tokens, messages, notices, dropped_turns=dropped, lore=lore_labels, reply_start=reply_start)


@dataclass(frozen=True)
class ContextUse:
    """How full the context window is: ``used`` of ``n_ctx`` tokens, and how many of the oldest turns no longer
    fit (the model does not see them)."""

    used: int
    n_ctx: int
    dropped_turns: int = 0

    @property
    def share(self) -> float:
        return self.used / self.n_ctx if self.n_ctx else 1.0


def context_use(
    backend: Backend,
    persona: Persona,
    system_prompt: str,
    history: list[Turn],
    reserve: int,
    greeting: str = "",
) -> ContextUse:
    """The tokens the conversation takes as the model will read it with the next message: system prompt, lore,
    greeting and the turns that fit while ``reserve`` tokens stay free for the next reply (``plan_prompt``'s
    trimming; the last reply included)."""
    try:
        plan = plan_prompt(backend, persona, system_prompt, history, "", reserve, greeting)
    except ModelError:  # not even the persona fits with that reserve
        return ContextUse(backend.n_ctx, backend.n_ctx, len(history))
    return ContextUse(len(plan.tokens), backend.n_ctx, plan.dropped_turns)

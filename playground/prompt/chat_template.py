"""Render a conversation with the model's own chat template (Jinja, from GGUF metadata or tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import ModelError

# Used only when a model ships no template (a base model): a plain transcript that a model which never saw
# chat markup can continue, the system prompt first, then "User: ..." and "Assistant: ..." lines. The reply stops
# where the model starts the user's next line (prompt/stop_strings.py).
PLAIN = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}"
    "{% else %}{{ 'Assistant: ' + message['content'] + '\n\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
FALLBACK_NOTICE = (
    "the model ships no chat template (a base model?): the conversation is written as a plain transcript "
    "(system prompt, then 'User: ...' / 'Assistant: ...' lines; see playground/prompt/chat_template.py)"
)


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def _raise(message: str) -> None:
    raise TemplateError(message)


class ChatTemplate:
    """A compiled chat template with the model's special tokens bound."""

    def __init__(self, source: str | None, bos_token: str = "", eos_token: str = ""):
        self.is_fallback = not source
        self.source = source or PLAIN
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        self._template = env.from_string(self.source)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        try:
            return self._template.render(
                messages=[m.as_dict() for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError as exc:
            raise ModelError(f"the model's chat template rejected the conversation: {exc}") from exc

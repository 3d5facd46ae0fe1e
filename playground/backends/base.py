"""The backend protocol every model runtime implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..chat_template import ChatTemplate
from ..personas import Sampling


@dataclass(frozen=True)
class Step:
    """One generated token."""

    token: int


@runtime_checkable
class Backend(Protocol):
    name: str
    model_id: str
    n_ctx: int
    n_layers: int
    d_model: int
    template: ChatTemplate

    def tokenize(self, text: str) -> list[int]:
        """Tokens of ``text`` with special tokens parsed (the rendered template holds them)."""
        ...

    def token_bytes(self, token: int) -> bytes:
        """Raw bytes of one token (may be a partial UTF-8 sequence)."""
        ...

    def is_end(self, token: int) -> bool:
        """True for end-of-turn / end-of-generation tokens."""
        ...

    def stream(self, prompt: list[int], sampling: Sampling) -> Iterator[Step]:
        """Generate after ``prompt``, one token at a time, until an end token or max_tokens."""
        ...

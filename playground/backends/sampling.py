"""How a reply is sampled: the settings a persona carries and every backend honours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    max_tokens: int = 200
    repeat_penalty: float = 1.1
    seed: int | None = None

    def merged(self, **overrides: Any) -> Sampling:
        values = {k: v for k, v in overrides.items() if v is not None}
        return Sampling(**{**self.__dict__, **values})

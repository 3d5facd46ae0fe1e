"""What a reply produces: the finished :class:`ChatResult` and the :class:`StreamEvent` s sent while it streams.

Both are contracts: ``ChatResult.to_dict`` is what ``chat --json`` and the UI API return, and the sequence of
stream events ('token', 'reset', 'replace', 'guard', 'done') is what the CLI and the web UI render live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..steering.probes import summarize


@dataclass
class ChatResult:
    """Everything about one reply; ``to_dict`` is the contract of ``chat --json`` and the UI API."""

    persona: str
    model: str
    reply: str
    tokens: list[str]
    steering: dict[str, float] = field(default_factory=dict)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    guard: dict[str, Any] = field(default_factory=lambda: {"events": [], "blocked": False})
    notices: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    # why the reply ended: "end" (the model ended its turn), "length" (cut at max_tokens: it can be continued),
    # "context" (the context window was full), "stop_string" (it began the user's turn), "blocked" (guardrail)
    finish_reason: str = "end"
    prefix: str = ""  # a continuation: the text it continues (``reply`` starts with it; ``tokens`` are the new ones)
    persona_map: dict[str, Any] | None = None  # {"x", "y", "nearest"}: the reply in the persona space, if built

    def to_dict(self) -> dict[str, Any]:
        out = {
            "persona": self.persona,
            "model": self.model,
            "reply": self.reply,
            "tokens": list(self.tokens),
            "steering": dict(self.steering),
            "probes": self.probes,
            "guard": self.guard,
            "notices": list(self.notices),
            "prompt_tokens": self.prompt_tokens,
            "timing": self.timing,
            "finish_reason": self.finish_reason,
        }
        if self.prefix:
            out["prefix"] = self.prefix
        if self.persona_map is not None:
            out["persona_map"] = self.persona_map
        return out


@dataclass
class StreamEvent:
    """Emitted while a reply streams.

    ``kind``: 'token' (``text`` to append), 'reset' (a guardrail discarded the text so far; the reply is
    being written again), 'replace' (a guardrail blocked the reply; ``text`` is the whole new reply),
    'guard' (guard events raised after the last token), 'status' (before the first token: ``text`` says why
    nothing comes yet, ``waiting`` or ``measuring``; see ``ChatSession.stream``) or 'done' (``result`` holds
    everything). ``guard`` lists guard events raised since the previous event.
    """

    kind: str
    text: str = ""
    index: int = -1
    result: ChatResult | None = None
    readout: dict[str, float] | None = None
    guard: list[dict[str, Any]] = field(default_factory=list)
    point: tuple[float, float] | None = None  # 'token': the reply so far on the persona map (x, y), if one is built


def probe_summary(readouts: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Per-trait summary of the probe readouts over a reply's tokens (empty when nothing was read)."""
    if not readouts:
        return {}
    traits = list(readouts[0])
    per_token = {t: [r[t] for r in readouts] for t in traits}
    return summarize(per_token, readouts[0])

"""A reply as the UI sees it: ``LiveReply`` folds a reply's stream events into text, tokens, per-token probe
readouts and guard events as they arrive. A reply can be continued (``continue_here``): the continuation's tokens
and readouts are appended to it. One exchange of a tab's conversation, with its alternative replies, is a
``playground.ui.turns.TurnRecord``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..chat.session import StreamEvent


@dataclass
class LiveReply:
    """A reply as it streams: what to show, and the readouts behind it.

    ``tokens``/``readouts`` belong to the attempt being written (a guardrail's ``reset`` starts them
    again); after a block, ``text`` is the refusal while ``tokens`` keep what was generated before it,
    so the heatmap still shows where the trait rose.
    """

    text: str = ""
    tokens: list[str] = field(default_factory=list)
    readouts: list[dict[str, float]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    blocked: bool = False
    stopped: bool = False
    attempts: int = 1
    point: tuple[float, float] | None = None  # the reply so far on the persona map (StreamEvent.point)
    phase: str = ""  # before the first token: why nothing comes yet ('waiting', 'measuring'; see ChatSession.stream)
    # a continuation starts after this many tokens and this text (what a guardrail's reset goes back to)
    base: tuple[int, str] = field(default=(0, ""), repr=False, compare=False)

    def feed(self, event: StreamEvent) -> None:
        self.events += event.guard
        if event.kind == "status":
            self.phase = event.text
        elif event.kind == "token":
            self.text += event.text
            self.tokens.append(event.text)
            self.readouts.append(dict(event.readout or {}))
            self.point = event.point or self.point
        elif event.kind == "reset":
            n, self.text = self.base
            self.tokens, self.readouts = self.tokens[:n], self.readouts[:n]
            self.point = None
            self.attempts += 1
        elif event.kind == "replace":
            self.text, self.blocked = event.text, True
        elif event.kind == "done" and event.result is not None:
            self.result = event.result.to_dict()
            self.text = self.result["reply"]
            if self.base[0]:  # a continuation: the result counts every token of the reply
                self.result["tokens"] = list(self.tokens)

    def continue_here(self) -> None:
        """Get ready for a continuation of this reply (``ChatSession.stream(prefix=...)``): it is being written
        again from its end, and the new tokens, readouts and result are added to it."""
        self.base = (len(self.tokens), self.text)
        self.result, self.stopped, self.phase = None, False, ""

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def finish_reason(self) -> str:
        """Why the reply ended (``ChatResult.finish_reason``); 'stopped' when the user stopped it, '' while it is
        written."""
        if self.stopped:
            return "stopped"
        return str((self.result or {}).get("finish_reason", "end")) if self.result is not None else ""

    @property
    def cut(self) -> bool:
        """The reply ended at the token limit (possibly mid-word): it can be continued."""
        return self.finish_reason == "length"

    @property
    def traits(self) -> list[str]:
        return list(self.readouts[0]) if self.readouts else []

    def series(self, trait: str) -> list[float]:
        return [r.get(trait, 0.0) for r in self.readouts]

    def means(self) -> dict[str, float]:
        """Mean readout of each trait over the reply so far (calibrated z)."""
        if not self.readouts:
            return {}
        return {t: sum(self.series(t)) / len(self.readouts) for t in self.traits}

    def prompt_last(self) -> dict[str, float]:
        """The readouts at the last prompt token: the prediction before any text."""
        return dict(self.readouts[0]) if self.readouts else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "readouts": [dict(r) for r in self.readouts],
            "events": list(self.events),
            "blocked": self.blocked,
            "stopped": self.stopped,
            "attempts": self.attempts,
            "result": self.result,
            "point": list(self.point) if self.point is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveReply:
        return cls(
            text=str(data.get("text", "")),
            tokens=[str(t) for t in data.get("tokens", [])],
            readouts=[{str(k): float(v) for k, v in r.items()} for r in data.get("readouts", [])],
            events=[dict(e) for e in data.get("events", [])],
            result=data.get("result"),
            blocked=bool(data.get("blocked", False)),
            stopped=bool(data.get("stopped", False)),
            attempts=int(data.get("attempts", 1)),
            point=_point(data.get("point")),
        )


def _point(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None

"""One exchange of a tab's conversation: the user's message and the replies written to it. Regenerating keeps
the earlier replies as alternatives ("swipes", as in SillyTavern); one of them is shown, and the shown one is
what the chat, the probe panels and the trend show and what the model sees as history. ``to_dict``/``from_dict``
are a turn's part of a chat export (``playground.ui.transcript``): ``assistant``/``steering``/``reply`` are the
shown reply (what a reader that knows nothing of alternatives takes), ``swipes`` and ``shown`` the alternatives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import PlaygroundError
from .live_reply import LiveReply


@dataclass
class Swipe:
    """One alternative reply and the steering it was written with."""

    reply: LiveReply
    steering: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"assistant": self.reply.text, "steering": dict(self.steering), "reply": self.reply.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Swipe:
        reply = LiveReply.from_dict(data.get("reply") or {"text": data["assistant"]})
        reply.text = data["assistant"]  # what the model saw is the text of record
        return cls(reply, dict(data.get("steering") or {}))


class TurnRecord:
    """A message and its replies (at least one); ``reply``/``steering`` are those of the one shown."""

    def __init__(self, user: str, reply: LiveReply, steering: dict[str, float] | None = None):
        self.user = user
        self.swipes: list[Swipe] = [Swipe(reply, dict(steering or {}))]
        self.shown = 0

    @property
    def reply(self) -> LiveReply:
        return self.swipes[self.shown].reply

    @property
    def steering(self) -> dict[str, float]:
        return self.swipes[self.shown].steering

    @steering.setter
    def steering(self, value: dict[str, float]) -> None:
        self.swipes[self.shown].steering = dict(value)

    @property
    def count(self) -> int:
        return len(self.swipes)

    def add(self, reply: LiveReply, steering: dict[str, float]) -> None:
        """A new alternative, shown from now on."""
        self.swipes.append(Swipe(reply, dict(steering)))
        self.shown = len(self.swipes) - 1

    def drop_shown(self, show: int) -> None:
        """Remove the alternative shown (one that failed to start) and show ``show`` again."""
        if len(self.swipes) > 1:
            del self.swipes[self.shown]
        self.shown = min(show, len(self.swipes) - 1)

    def select(self, index: int) -> None:
        if not 0 <= index < len(self.swipes):
            raise PlaygroundError(f"there is no reply {index + 1}; this message has {len(self.swipes)}")
        self.shown = index

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, **self.swipes[self.shown].to_dict()}
        if len(self.swipes) > 1:
            out["swipes"] = [s.to_dict() for s in self.swipes]
            out["shown"] = self.shown
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnRecord:
        """A turn of a checked export (``transcript.parse_transcript``); one without ``swipes`` has one reply."""
        swipes = [Swipe.from_dict(s) for s in data.get("swipes") or [data]]
        record = cls(data["user"], swipes[0].reply, swipes[0].steering)
        record.swipes = swipes
        record.shown = int(data.get("shown", 0)) if data.get("swipes") else 0
        return record

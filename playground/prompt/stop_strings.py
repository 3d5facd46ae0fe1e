"""Stop a reply where the model starts writing the user's next line.

Small chat models sometimes run past their turn and invent the other side of the dialogue ("...arr!\\nUser:
and then?"). The session scans the streamed text for stop strings such as ``"\\nUser:"`` and ends the reply
just before one. Text that *might* be the start of a stop string is held back until the next tokens
decide, so the user never sees a stop string appear and then vanish.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


GENERIC_SPEAKERS = ("User", "You", "Human")


def stop_strings_for(user_name: str, others: Iterable[str] = ()) -> tuple[str, ...]:
    """The turn markers a reply must not contain, at a line start: the user's name, the generic speakers ("User",
    "You", "Human") and ``others`` (e.g. the names of the persona's role models, which small models sometimes
    start writing lines for)."""
    names = dict.fromkeys(n.strip() for n in (user_name, *GENERIC_SPEAKERS, *others) if n and n.strip())
    return tuple(f"\n{name}:" for name in names)


@dataclass
class _Held(Generic[T]):
    text: str
    payload: T


class StopScanner(Generic[T]):
    """Feed streamed pieces (each with a payload, e.g. its probe readout); get back the pieces that are safe
    to show. After a stop string is found, ``stopped`` is True and the piece that contained its start comes
    back cut just before it (or not at all when nothing of it precedes the stop string)."""

    def __init__(self, stops: Iterable[str]):
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._held: list[_Held[T]] = []

    def push(self, text: str, payload: T) -> list[tuple[str, T]]:
        if self.stopped:
            return []
        self._held.append(_Held(text, payload))
        joined = "".join(h.text for h in self._held)
        hits = [i for i in (joined.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            return self._release(min(hits), cut=True)
        return self._release(len(joined) - self._partial_suffix(joined), cut=False)

    def flush(self) -> list[tuple[str, T]]:
        """Everything still held (the reply ended without completing a stop string)."""
        out = [(h.text, h.payload) for h in self._held]
        self._held = []
        return out

    def held_text(self) -> str:
        return "".join(h.text for h in self._held)

    def _partial_suffix(self, joined: str) -> int:
        """Length of the longest end of ``joined`` that is the beginning of some stop string."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(joined)), best, -1):
                if joined.endswith(stop[:n]):
                    best = n
                    break
        return best

    def _release(self, boundary: int, *, cut: bool) -> list[tuple[str, T]]:
        """Release held pieces that end at or before ``boundary``; with ``cut`` also the part of the piece
        straddling it that lies before it, and drop the rest."""
        out: list[tuple[str, T]] = []
        start = 0
        keep: list[_Held[T]] = []
        for held in self._held:
            end = start + len(held.text)
            if end <= boundary:
                out.append((held.text, held.payload))
            elif cut:
                if boundary > start:
                    out.append((held.text[: boundary - start], held.payload))
                break
            else:
                keep.append(held)
            start = end
        self._held = [] if cut else keep
        return out

"""First come, first served: API requests take turns on the one model in the order they arrived, and a request
that would wait behind ``max_waiting`` others is refused at once (HTTP 429) instead of queueing without end.

A :class:`Ticket` is taken when the request arrives (so the refusal comes before any streaming starts), waited
on when the reply is about to be written, and released when it is done, cancelled or abandoned (idempotent).
"""

from __future__ import annotations

import threading
from collections import deque

from .errors import ApiError

POLL_S = 0.1  # how often a waiting request looks whether its client has gone


class Cancelled(Exception):
    """The client went away while its request waited for its turn."""


class Ticket:
    def __init__(self, queue: FairQueue, ready: threading.Event):
        self._queue, self._ready, self._done = queue, ready, False

    def wait(self, cancelled: threading.Event) -> None:
        """Block until this request's turn; raise :class:`Cancelled` (giving the place up) if ``cancelled``."""
        while not self._ready.wait(POLL_S):
            if cancelled.is_set():
                self.release()
                raise Cancelled

    def release(self) -> None:
        self._queue._release(self)


class FairQueue:
    def __init__(self, max_waiting: int = 16):
        if max_waiting < 0:
            raise ValueError("max_waiting must be at least 0")
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._waiting: deque[Ticket] = deque()
        self._holder: Ticket | None = None

    def ticket(self) -> Ticket:
        """A place in the line; ApiError 429 when ``max_waiting`` requests already wait."""
        with self._lock:
            if self._holder is not None and len(self._waiting) >= self.max_waiting:
                raise ApiError(
                    429,
                    f"too many requests are waiting for the model ({len(self._waiting)} queued, 1 writing); "
                    "try again in a moment",
                    kind="rate_limit_error",
                    code="queue_full",
                )
            ticket = Ticket(self, threading.Event())
            if self._holder is None:
                self._holder = ticket
                ticket._ready.set()
            else:
                self._waiting.append(ticket)
            return ticket

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket._done:
                return
            ticket._done = True
            if ticket is not self._holder:
                self._waiting.remove(ticket)
                return
            self._holder = self._waiting.popleft() if self._waiting else None
            if self._holder is not None:
                self._holder._ready.set()

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)


__all__ = ["Cancelled", "FairQueue", "Ticket"]

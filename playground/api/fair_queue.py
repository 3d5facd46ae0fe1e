"""First come, first served: API requests take turns on the model in the order they arrived, and a request
that would wait behind ``max_waiting`` others is refused at once (HTTP 429) instead of queueing without end.

``slots`` requests write at once: 1 for backends that answer one request at a time, the engine's batch for a
batching engine (vLLM); given as a function, it is read when the first request arrives (the model loaded).

A :class:`Ticket` is taken when the request arrives (so the refusal comes before any streaming starts), waited
on when the reply is about to be written, and released when it is done, cancelled or abandoned (idempotent).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

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
    def __init__(self, max_waiting: int = 16, slots: int | Callable[[], int] = 1):
        if max_waiting < 0:
            raise ValueError("max_waiting must be at least 0")
        self.max_waiting = max_waiting
        self._slots = slots
        self._lock = threading.Lock()
        self._waiting: deque[Ticket] = deque()
        self._holders: set[Ticket] = set()

    @property
    def slots(self) -> int:
        if callable(self._slots):
            self._slots = max(1, int(self._slots()))
        return self._slots

    def ticket(self) -> Ticket:
        """A place in the line; ApiError 429 when ``max_waiting`` requests already wait."""
        slots = self.slots
        with self._lock:
            if len(self._holders) >= slots and len(self._waiting) >= self.max_waiting:
                raise ApiError(
                    429,
                    f"too many requests are waiting for the model ({len(self._waiting)} queued, "
                    f"{len(self._holders)} writing); "
                    "try again in a moment",
                    kind="rate_limit_error",
                    code="queue_full",
                )
            ticket = Ticket(self, threading.Event())
            if len(self._holders) < slots:
                self._holders.add(ticket)
                ticket._ready.set()
            else:
                self._waiting.append(ticket)
            return ticket

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket._done:
                return
            ticket._done = True
            if ticket not in self._holders:
                self._waiting.remove(ticket)
                return
            self._holders.discard(ticket)
            if self._waiting:
                successor = self._waiting.popleft()
                self._holders.add(successor)
                successor._ready.set()

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)


__all__ = ["Cancelled", "FairQueue", "Ticket"]

"""Chat first: long background work (the Lab's measurements and fine-tuning) gives way to chats in progress,
and can be cancelled.

One model process serves everybody: a chat reply and a Lab job compete for the same two cores and, for
llama.cpp, the same model. ``Foreground`` counts the replies being written or waiting to be (``active()``
around each one); a ``BackgroundJob`` calls ``checkpoint()`` at points where it can stop for a while (between
its generations, at every decoder layer of a torch forward or backward pass). While a chat is in the
foreground the job waits there; when it sits on the model-compute thread (torch work), it runs the chat's
model computations itself while it waits (``compute_thread.serve_while``), so the chat is never queued behind
a long torch job and one OpenMP thread team does all the work. ``cancel()`` makes the next checkpoint raise
``JobCancelled``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import PlaygroundError
from .compute_thread import on_the_compute_thread, serve_compute_jobs_while

POLL_S = 0.05  # how often a waiting job looks at the foreground and its cancel flag


class JobCancelled(PlaygroundError):
    """A background job was cancelled by its owner; raised at the job's next checkpoint."""


class Foreground:
    """How many replies are being written (or wait for the model) right now."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._active = 0

    @contextmanager
    def active(self) -> Iterator[None]:
        with self._changed:
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self._active > 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for no reply to be active; True when none is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active == 0, timeout=timeout)


class BackgroundJob:
    """One long job that yields to the foreground and can be cancelled (thread-safe)."""

    def __init__(self, foreground: Foreground, name: str = "job") -> None:
        self.foreground = foreground
        self.name = name
        self._cancel = threading.Event()
        self.yielded_s = 0.0  # time spent waiting for chats
        self.yields = 0
        self.on_pause: Callable[[], None] | None = None  # e.g. tell the page that the job waits for a chat

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(f"{self.name} cancelled")

    def checkpoint(self) -> None:
        """Give way while a chat is active, then go on; raises ``JobCancelled`` once cancelled."""
        self.raise_if_cancelled()
        if not self.foreground.busy:
            return
        started = time.monotonic()
        self.yields += 1
        if self.on_pause is not None:
            self.on_pause()
        waiting = lambda: self.foreground.busy and not self._cancel.is_set()  # noqa: E731
        if on_the_compute_thread():
            serve_compute_jobs_while(waiting, POLL_S)  # the chat's model work runs here, in between
        else:
            while waiting():
                self.foreground.wait_idle(POLL_S)
        self.yielded_s += time.monotonic() - started
        self.raise_if_cancelled()


__all__ = ["BackgroundJob", "Foreground", "JobCancelled"]

"""One reply of a tab's conversation written in a worker thread (``ChatState`` starts one at a time): the thread
feeds the session's stream events into a queue, so the model runs at full speed whatever the page does, and
``follow`` folds them into the turn's shown ``LiveReply`` at the pace the page takes them. A stopped reply (or
one whose page went away) keeps what was written, for the model too; one that fails before it is done is undone
(``undo``)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..chat.session import ChatSession
from ..prompt.conversation import Turn
from .live_reply import LiveReply
from .turns import TurnRecord

_END = object()  # the end of a reply's event queue


class ReplyWorker:
    """Generates ``record``'s shown reply with ``session.stream(record.user, **options)`` from construction on."""

    def __init__(
        self, session: ChatSession, record: TurnRecord, options: dict[str, Any], undo: Callable[[], None]
    ) -> None:
        self.session, self.record, self.undo = session, record, undo
        self.stop = threading.Event()  # set: stop after the next token
        self.over = threading.Event()  # set: the last event was read; the tab is free for the next reply
        self._events: queue.Queue[Any] = queue.Queue()
        options = {k: v for k, v in options.items() if v is not None}
        self._thread = threading.Thread(
            target=self._produce, args=(options,), name=f"reply-{session.persona.id}", daemon=True
        )
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._thread.is_alive() and not self.over.is_set()

    def _produce(self, options: dict[str, Any]) -> None:
        gen = self.session.stream(self.record.user, **options)
        try:
            for event in gen:
                self._events.put(event)
                if self.stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which raises it
            self._events.put(exc)
        finally:
            gen.close()  # releases the model's generation lock
            self._events.put(_END)

    def _next_items(self, live: LiveReply, wait: float | None, min_interval: float, last_yield: float) -> list[Any]:
        """The next event (waiting at most ``wait`` seconds; [] when none came) and whatever else is already
        waiting, which is folded into the same update (after the first token, for up to ``min_interval``)."""
        try:
            items = [self._events.get(timeout=wait) if wait is not None else self._events.get()]
        except queue.Empty:
            return []
        while items[-1] is not _END:
            pause = min_interval - (time.monotonic() - last_yield) if live.tokens else 0.0
            try:
                items.append(self._events.get(timeout=pause) if pause > 0 else self._events.get_nowait())
            except queue.Empty:
                break
        return items

    def follow(self, min_interval: float, first_wait: float | None = None) -> Iterator[LiveReply]:
        """The growing reply, one update per batch of events; with ``first_wait``, the still empty reply once
        when nothing came that long after the start (so a page can say it is working)."""
        record, history = self.record, self.session.history
        live, message = record.reply, record.user
        last_yield = 0.0
        ended = failed = False
        try:
            while not ended:
                items = self._next_items(live, first_wait, min_interval, last_yield)
                if first_wait is not None and not items:
                    first_wait = None
                    yield live  # nothing written yet
                    continue
                first_wait = None
                for item in items:
                    if item is _END:
                        ended = True
                    elif isinstance(item, BaseException):
                        failed = live.result is None
                        if failed:
                            self.undo()
                        raise item
                    else:
                        live.feed(item)
                if live.result is not None:
                    record.steering = dict(live.result.get("steering") or {})
                elif ended:  # stopped before the end: keep the partial reply
                    live.stopped = True
                    history.append(Turn(message, live.text))
                if ended:
                    self.over.set()
                last_yield = time.monotonic()
                yield live
        finally:
            if not ended and not failed:  # the consumer went away (page closed, event cancelled): stop generating
                self.stop.set()
                live.stopped = live.result is None
                if live.stopped:
                    history.append(Turn(message, live.text))

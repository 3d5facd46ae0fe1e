"""``ChatState``: one browser tab's conversation with one persona — a ChatSession plus a record of every turn
(for the probe panels, the trend across turns, regenerate/undo and JSON export/import). Replies stream from a
worker thread, so the model runs at full speed whatever the page does. No Gradio here."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import yaml

from ..chat.session import ChatSession, Playground
from ..definitions.personas import Persona
from ..errors import PlaygroundError
from ..guard.policy import HIJACK, Policy
from ..prompt.conversation import Turn
from ..steering.request import active_strengths
from .api import catalog_persona
from .live_reply import LiveReply, TurnRecord
from .transcript import TRANSCRIPT_FORMAT, TRANSCRIPT_VERSION

MAX_MESSAGE_CHARS = 8000
_END = object()  # the end of a reply's event queue


class ChatState:
    """One browser tab's conversation with one persona. Never shared between users.

    A reply is generated in a worker thread that feeds a queue, so the model runs at full speed whatever
    the page does, and is released (its generation lock too) when the reply ends, is stopped, or the page
    goes away mid-reply.
    """

    def __init__(self, pg: Playground, persona: str | Persona):
        self.pg = pg
        try:
            self.session: ChatSession = pg.session(
                catalog_persona(pg, persona) if isinstance(persona, str) else persona
            )
        except yaml.YAMLError as exc:  # a file the YAML reader rejects outright (e.g. control characters)
            raise PlaygroundError(f"persona '{persona}' can't be read: {exc}") from None
        self.turns: list[TurnRecord] = []
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._room: dict[str, float] | None = None

    @property
    def persona_id(self) -> str:
        return self.session.persona.id

    @property
    def persona(self) -> Persona:
        return self.session.persona

    @property
    def last(self) -> TurnRecord | None:
        return self.turns[-1] if self.turns else None

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def request_stop(self) -> bool:
        """Ask the reply being written to stop after its next token; False when nothing is running."""
        if not self.busy:
            return False
        self._stop.set()
        return True

    def _check_idle(self) -> None:
        if self.busy:
            raise PlaygroundError("still answering the previous message; press Stop (Esc) first")

    def stream(
        self,
        message: str,
        steering: dict[str, float] | None = None,
        *,
        min_interval: float = 0.0,
        first_wait: float | None = None,
        **options: Any,
    ) -> Iterator[LiveReply]:
        """Send ``message``: generation starts at once; iterate to get the growing reply (one LiveReply, updated).

        Errors in the message or steering are raised here, before anything starts. The turn is recorded at
        once, so the chat can show it while it streams. Events that arrive while the consumer is busy are
        folded into one update; ``min_interval`` (seconds) limits the update rate after the first token. With
        ``first_wait`` (seconds), when nothing has come that long after the start, the still empty reply is
        yielded once (so a page can say it is working) and the wait goes on. A stopped reply keeps what was
        written, for the model too.
        """
        message = (message or "").strip()
        if not message:
            raise PlaygroundError("the message is empty; type something to send")
        if len(message) > MAX_MESSAGE_CHARS:
            raise PlaygroundError(f"the message has {len(message):,} characters; the limit is {MAX_MESSAGE_CHARS:,}")
        self._check_idle()
        options = {k: v for k, v in options.items() if v is not None}
        # Validate the steering now, so a bad value is an error before anything is recorded.
        self.pg.steering_for(active_strengths(steering))
        live = LiveReply()
        record = TurnRecord(message, live, active_strengths(steering))
        events: queue.Queue[Any] = queue.Queue()
        stop = self._stop = threading.Event()

        def produce() -> None:
            gen = self.session.stream(message, steering=steering, **options)
            try:
                for event in gen:
                    events.put(event)
                    if stop.is_set():
                        break
            except BaseException as exc:  # handed to the consumer, which raises it
                events.put(exc)
            finally:
                gen.close()  # releases the model's generation lock
                events.put(_END)

        self._worker = threading.Thread(target=produce, name=f"reply-{self.persona_id}", daemon=True)
        self.turns.append(record)
        self._worker.start()
        return self._follow(message, record, events, stop, min_interval, first_wait)

    def _follow(
        self,
        message: str,
        record: TurnRecord,
        events: queue.Queue[Any],
        stop: threading.Event,
        min_interval: float,
        first_wait: float | None = None,
    ) -> Iterator[LiveReply]:
        live = record.reply
        last_yield = 0.0
        ended = False
        try:
            while not ended:
                if first_wait is not None:  # only before the first event
                    wait, first_wait = first_wait, None
                    try:
                        items = [events.get(timeout=wait)]
                    except queue.Empty:
                        yield live  # nothing written yet: the caller can say that it is working
                        continue
                else:
                    items = [events.get()]
                while True:  # fold whatever else is already waiting into the same update
                    wait = min_interval - (time.monotonic() - last_yield) if live.tokens else 0.0
                    try:
                        items.append(events.get(timeout=wait) if wait > 0 else events.get_nowait())
                    except queue.Empty:
                        break
                    if items[-1] is _END:
                        break
                for item in items:
                    if item is _END:
                        ended = True
                    elif isinstance(item, BaseException):
                        if live.result is None:
                            self.turns.remove(record)
                        raise item
                    else:
                        live.feed(item)
                if live.result is not None:
                    record.steering = dict(live.result.get("steering") or {})
                elif ended:  # stopped before the end: keep the partial reply
                    live.stopped = True
                    self.session.history.append(Turn(message, live.text))
                last_yield = time.monotonic()
                yield live
        finally:
            if not ended:  # the consumer went away (page closed, event cancelled): stop generating
                stop.set()
                live.stopped = live.result is None
                if live.stopped and record in self.turns:
                    self.session.history.append(Turn(message, live.text))

    def send(self, message: str, steering: dict[str, float] | None = None, **options: Any) -> LiveReply:
        """Stream to the end and return the finished reply."""
        final = LiveReply()
        for final in self.stream(message, steering, **options):  # noqa: B007 - the last update is the reply
            pass
        return final

    def undo(self) -> TurnRecord | None:
        """Forget the last exchange (the model forgets it too)."""
        self._check_idle()
        if not self.turns:
            return None
        self.session.undo()
        return self.turns.pop()

    def clear(self) -> None:
        self._check_idle()
        self.session.clear()
        self.session.guard_log.clear()
        self.turns.clear()

    def trend(self, upto: int | None = None) -> dict[str, list[float]]:
        """Each trait's mean readout per turn (the first ``upto`` turns; turns without readouts are skipped)."""
        out: dict[str, list[float]] = {}
        for rec in self.turns[:upto]:
            for trait, value in rec.reply.means().items():
                out.setdefault(trait, []).append(value)
        return out

    @property
    def policy(self) -> Policy:
        return self.pg.policy_for(self.persona)

    def room(self, measure: bool = True) -> dict[str, float]:
        """The persona's typical readouts, which thresholds count from under ``baseline: persona``.

        Known once the persona has answered (the guard measures it then); empty before that, when
        ``measure`` is false and it was not looked up yet, or when the model is busy with someone else's
        reply (we never wait for it here).
        """
        if self._room is not None or not measure:
            return self._room or {}
        policy = self.policy
        if policy.baseline != "persona" or not policy.rules or not self.turns:
            return {}
        if not self.pg.generation_lock.acquire(blocking=False):
            return {}
        try:
            screening = self.pg.screening if policy.screen_prompt and HIJACK in policy.rules else None
            base = self.pg.guard_room(self.persona, self.session.system_prompt, screening)
            self._room = {k: float(v) for k, v in base.reply.items()}
        except PlaygroundError:
            return {}
        finally:
            self.pg.generation_lock.release()
        return self._room

    # -- export / import -----------------------------------------------------------------------
    def to_transcript(self) -> dict[str, Any]:
        return {
            "format": TRANSCRIPT_FORMAT,
            "version": TRANSCRIPT_VERSION,
            "persona": self.persona_id,
            "model": self.pg.backend.model_id,
            "turns": [
                {"user": t.user, "assistant": t.reply.text, "steering": t.steering, "reply": t.reply.to_dict()}
                for t in self.turns
            ],
        }

    def export_json(self) -> str:
        return json.dumps(self.to_transcript(), ensure_ascii=False, indent=1)

    @classmethod
    def from_transcript(cls, pg: Playground, data: dict[str, Any]) -> ChatState:
        state = cls(pg, data["persona"])
        for turn in data["turns"]:
            reply = LiveReply.from_dict(turn.get("reply") or {"text": turn["assistant"]})
            reply.text = turn["assistant"]
            state.turns.append(TurnRecord(turn["user"], reply, dict(turn.get("steering") or {})))
            state.session.history.append(Turn(turn["user"], turn["assistant"]))
        return state

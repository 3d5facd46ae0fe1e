"""``ChatState``: one browser tab's conversation with one persona — a ChatSession plus a record of every turn
(for the probe panels, the trend across turns, regenerate/undo and JSON export/import). Replies stream from a
worker thread, so the model runs at full speed whatever the page does. Beyond sending: alternative replies to
the last message (``regenerate``, ``select``), continuing a reply cut at the token limit (``continue_reply``),
editing a message (``stream(edit=...)``), messages sent while a reply is written (``queue``, ``stream_next``)
and how full the context window is (``context_use``). No Gradio here."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from ..chat.session import ChatSession, Playground
from ..definitions.personas import Persona
from ..errors import PlaygroundError
from ..guard.policy import HIJACK, Policy
from ..prompt.conversation import ContextUse, Turn, context_use
from ..steering.request import active_strengths
from .api import catalog_persona
from .live_reply import LiveReply
from .reply_worker import ReplyWorker
from .transcript import TRANSCRIPT_FORMAT, TRANSCRIPT_VERSION
from .turns import TurnRecord

MAX_MESSAGE_CHARS = 8000
REPEAT_S = 1.0  # the message being answered, sent again this soon after it, is a repeated Enter: not queued


def _checked(message: str) -> str:
    """The message to send, stripped; PlaygroundError when it is empty or too long."""
    message = (message or "").strip()
    if not message:
        raise PlaygroundError("the message is empty; type something to send")
    if len(message) > MAX_MESSAGE_CHARS:
        raise PlaygroundError(f"the message has {len(message):,} characters; the limit is {MAX_MESSAGE_CHARS:,}")
    return message


class ChatState:
    """One browser tab's conversation with one persona. Never shared between users.

    A reply is generated in a worker thread (``ReplyWorker``), so the model runs at full speed whatever the page
    does, and is released (its generation lock too) when the reply ends, is stopped, or the page goes away
    mid-reply.
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
        self.pending: list[str] = []  # sent while a reply was written: sent in turn when it ends (``stream_next``)
        self._lock = threading.RLock()  # starting a reply, queueing a message and taking one are atomic
        self._worker: ReplyWorker | None = None  # the latest reply's
        self._sent_at = float("-inf")  # time.monotonic() when the latest message was sent
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
        return self._worker is not None and self._worker.busy

    def request_stop(self) -> bool:
        """Ask the reply being written to stop after its next token; False when nothing is running."""
        if self._worker is None or not self.busy:
            return False
        self._worker.stop.set()
        return True

    def _check_idle(self) -> None:
        if self.busy:
            raise PlaygroundError("still answering the previous message; press Stop (Esc) first")

    def stream(
        self,
        message: str,
        steering: dict[str, float] | None = None,
        *,
        edit: int | None = None,
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
        written, for the model too. With ``edit`` (a turn's index), the message replaces that turn's: that turn
        and every later one are dropped (and come back if the reply fails).
        """
        message = _checked(message)
        with self._lock:
            self._check_idle()
            self._check_steering(steering)
            kept = len(self.turns) if edit is None else edit
            if not 0 <= kept <= len(self.turns):
                raise PlaygroundError(f"there is no message {kept + 1} to edit")
            dropped, forgotten = self.turns[kept:], self.session.history[kept:]
            del self.turns[kept:], self.session.history[kept:]
            record = TurnRecord(message, LiveReply(), active_strengths(steering))
            self.turns.append(record)
            self._sent_at = time.monotonic()

            def undo() -> None:
                self.turns[kept:], self.session.history[kept:] = dropped, forgotten

            return self._start(record, steering, options, undo, min_interval, first_wait)

    def regenerate(
        self,
        steering: dict[str, float] | None = None,
        *,
        min_interval: float = 0.0,
        first_wait: float | None = None,
        **options: Any,
    ) -> Iterator[LiveReply]:
        """Write another reply to the last message, as ``stream`` does; the earlier replies stay as alternatives
        (``select``), and the new one is shown."""
        with self._lock:
            record = self._last_for("regenerate")
            self._check_steering(steering)
            before = record.shown
            self.session.history.pop()
            record.add(LiveReply(), active_strengths(steering))

            def undo() -> None:
                record.drop_shown(before)
                self.session.history.append(Turn(record.user, record.reply.text))

            return self._start(record, steering, options, undo, min_interval, first_wait)

    def continue_reply(
        self,
        steering: dict[str, float] | None = None,
        *,
        min_interval: float = 0.0,
        first_wait: float | None = None,
        **options: Any,
    ) -> Iterator[LiveReply]:
        """Continue the last reply from where it ended (cut at the token limit, or stopped), as ``stream`` does:
        the new text, tokens and readouts are added to the same reply, for the model too."""
        with self._lock:
            record = self._last_for("continue")
            if record.reply.blocked:
                raise PlaygroundError("a reply blocked by the guardrail can't be continued; regenerate it instead")
            self._check_steering(steering)
            before, shown = copy.deepcopy(record.reply), record.shown
            self.session.history.pop()
            record.reply.continue_here()

            def undo() -> None:
                record.swipes[shown].reply = before
                self.session.history.append(Turn(record.user, before.text))

            options = {**options, "prefix": before.text}
            return self._start(record, steering, options, undo, min_interval, first_wait)

    def _last_for(self, what: str) -> TurnRecord:
        self._check_idle()
        if self.last is None:
            raise PlaygroundError(f"nothing to {what} yet: send a message first")
        return self.last

    def _check_steering(self, steering: dict[str, float] | None) -> None:
        """Validate the steering now, so a bad value is an error before anything is recorded."""
        self.pg.steering_for(active_strengths(steering))

    def _start(
        self,
        record: TurnRecord,
        steering: dict[str, float] | None,
        options: dict[str, Any],
        undo: Callable[[], None],
        min_interval: float,
        first_wait: float | None,
    ) -> Iterator[LiveReply]:
        """Generate ``record``'s shown reply in a worker thread (call with the lock held); ``undo()`` puts the
        conversation back as it was when the reply fails before it is done."""
        self._worker = ReplyWorker(self.session, record, {**options, "steering": steering}, undo)
        return self._worker.follow(min_interval, first_wait)

    def send(self, message: str, steering: dict[str, float] | None = None, **options: Any) -> LiveReply:
        """Stream to the end and return the finished reply."""
        final = LiveReply()
        for final in self.stream(message, steering, **options):  # noqa: B007 - the last update is the reply
            pass
        return final

    def undo(self) -> TurnRecord | None:
        """Forget the last exchange (the model forgets it too)."""
        with self._lock:
            self._check_idle()
            if not self.turns:
                return None
            self.session.undo()
            return self.turns.pop()

    def clear(self) -> None:
        with self._lock:
            self._check_idle()
            self.session.clear()
            self.session.guard_log.clear()
            self.turns.clear()

    # -- alternative replies ("swipes") ----------------------------------------------------------------
    def select(self, index: int) -> LiveReply:
        """Show the last message's reply number ``index`` (0-based): the chat, the panels and what the model
        sees as history for the next turn follow it."""
        with self._lock:
            record = self._last_for("choose")
            record.select(index)
            self.session.history[-1] = Turn(record.user, record.reply.text)
            return record.reply

    def swipe(self, step: int) -> LiveReply:
        """Show the previous (``step`` -1) or next (+1) reply to the last message; stays at the first or last."""
        record = self._last_for("choose")
        return self.select(max(0, min(record.count - 1, record.shown + step)))

    # -- messages sent while a reply is written ----------------------------------------------------------
    def queue(self, message: str) -> bool:
        """Keep ``message`` to be sent when the reply being written ends (and after any kept before it): True.
        False when no reply is written and none waits: send it now. PlaygroundError for an empty or too long
        message. The message being answered, sent again within ``REPEAT_S``, is a repeated Enter: True, and
        nothing is kept."""
        message = _checked(message)
        with self._lock:
            if not (self.busy or self.pending):
                return False
            repeat = self.last is not None and self.last.user == message
            if not (repeat and not self.pending and time.monotonic() - self._sent_at < REPEAT_S):
                self.pending.append(message)
            return True

    def stream_next(self, steering: dict[str, float] | None = None, **options: Any) -> Iterator[LiveReply] | None:
        """Send the first kept message (``stream``) and take it from the queue; None when none waits, or while a
        reply is written (whoever writes it sends the next one after it)."""
        with self._lock:
            if self.busy or not self.pending:
                return None
            updates = self.stream(self.pending[0], steering, **options)
            self.pending.pop(0)
            return updates

    def take_pending(self) -> list[str]:
        """The kept messages, no longer to be sent (Stop puts them back in the message box)."""
        with self._lock:
            out, self.pending = self.pending, []
            return out

    def context_use(self, reserve: int | None = None) -> ContextUse:
        """How full the model's context window is with this conversation (system prompt, lore and the turns the
        model still sees), keeping ``reserve`` tokens (default: the persona's max_tokens) for the next reply."""
        reserve = self.persona.sampling.max_tokens if reserve is None else reserve
        history = list(self.session.history)
        return context_use(self.pg.backend, self.persona, self.session.system_prompt, history, reserve)

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
            "turns": [t.to_dict() for t in self.turns],
        }

    def export_json(self) -> str:
        return json.dumps(self.to_transcript(), ensure_ascii=False, indent=1)

    @classmethod
    def from_transcript(cls, pg: Playground, data: dict[str, Any]) -> ChatState:
        state = cls(pg, data["persona"])
        for turn in data["turns"]:
            record = TurnRecord.from_dict(turn)
            state.turns.append(record)
            state.session.history.append(Turn(record.user, record.reply.text))
        return state

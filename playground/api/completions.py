"""One chat completion on the shared Playground: the request's session (persona, the client's system message,
its earlier turns, stop strings, guard) checked before anything streams, then the reply's stream events turned
into OpenAI chunks or a whole response.

The session is made for this request alone and records nothing, so requests never share history or steering:
steering is applied per call (``ChatSession.stream(steering=...)``), as in the UI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..chat.reply import ChatResult, StreamEvent
from ..chat.session import ChatSession, Playground
from ..errors import PlaygroundError
from ..guard.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from .errors import bad_request
from .fair_queue import FairQueue, Ticket
from .requests import CompletionRequest
from .responses import Shapes, sse, sse_comment

PLAIN_PERSONA = "assistant"  # what ``model: <model id>`` chats as when the client sends no system message


class Completions:
    def __init__(self, pg: Playground, queue: FairQueue | None = None):
        self.pg = pg
        self.queue = queue or FairQueue(slots=lambda: pg.generation_lock.capacity)

    def personas(self) -> list[str]:
        return sorted(self.pg.catalog.persona_files())

    def policies(self) -> dict[str, Path]:
        folder = DEFAULT_POLICY_PATH.parent
        return {p.stem: p for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])}

    def _policy(self, guard: str | bool, session: ChatSession) -> Policy | None:
        if guard is True:
            return None  # the server's policy (with this model's own reply thresholds, when measured)
        if guard is False:
            return Policy(name="none")
        known = self.policies()
        if guard not in known:
            raise bad_request(f"unknown guard policy '{guard}' (available: {', '.join(known)}, or false)", "guard")
        return load_policy(known[guard], self.pg.catalog).merged(session.persona.guard)

    def session_for(self, req: CompletionRequest) -> ChatSession:
        """The request's own session; every problem found here is a 400 before anything streams."""
        pg = self.pg
        try:
            session = pg.session(pg.catalog.persona(req.persona or PLAIN_PERSONA))
            if req.system:
                joined = req.system if req.persona is None else f"{session.system_prompt}\n\n{req.system}"
                session.system_prompt = joined.strip()
            session.history = list(req.history)
            session.extra_stops = list(req.stop)
            session.policy = self._policy(req.guard, session)
            pg.steering_for({**session.persona.steering, **req.steering}, "steering")  # unknown trait, range
        except PlaygroundError as exc:
            raise bad_request(str(exc), "steering" if str(exc).startswith("steering:") else None) from None
        return session

    def events(
        self, req: CompletionRequest, session: ChatSession, ticket: Ticket, cancelled: threading.Event
    ) -> Iterator[StreamEvent]:
        """The reply's events once it is this request's turn (the ticket is given back however it ends)."""
        try:
            ticket.wait(cancelled)
            options: dict[str, Any] = {"steering": req.steering, "record": False, "prefix": req.prefix}
            yield from session.stream(req.message, **options, **req.sampling)
        finally:
            ticket.release()

    def chunks(self, req: CompletionRequest, events: Iterator[StreamEvent]) -> Iterator[str]:
        """Server-sent events: one chunk per token with its readouts, then the final chunk and ``[DONE]``."""
        shapes = Shapes(req.model)
        try:
            yield from self._chunks(req, shapes, events)
        except PlaygroundError as exc:  # after the 200 went out: said in the stream, as OpenAI does
            yield sse({"error": {"message": str(exc), "type": "invalid_request_error", "param": None, "code": None}})
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # the client went away: the reply stops and gives the model back
        yield sse("[DONE]")

    def _chunks(self, req: CompletionRequest, shapes: Shapes, events: Iterator[StreamEvent]) -> Iterator[str]:
        first = True
        for ev in events:
            if ev.kind == "status":
                yield sse_comment(ev.text)
            elif ev.kind == "token":
                delta = {"role": "assistant", "content": ev.text} if first else {"content": ev.text}
                first = False
                probes = {t: round(float(z), 4) for t, z in (ev.readout or {}).items()}
                yield sse(shapes.chunk(delta, probes=probes, **({"guard": ev.guard} if ev.guard else {})))
            elif ev.kind == "reset":
                yield sse(shapes.chunk({}, reset=True, guard=ev.guard))
            elif ev.kind == "replace":
                yield sse(shapes.chunk({"content": "\n\n" + ev.text}, replace=ev.text, guard=ev.guard))
            elif ev.kind == "guard":
                yield sse(shapes.chunk({}, guard=ev.guard))
            elif ev.kind == "done" and ev.result is not None:
                result = self._finished(req, ev.result)
                yield sse(shapes.final_chunk(result))
                if req.include_usage:
                    yield sse(shapes.usage_chunk(result))

    def whole(self, req: CompletionRequest, events: Iterator[StreamEvent]) -> dict[str, Any]:
        result = next((ev.result for ev in events if ev.kind == "done"), None)
        if result is None:
            raise PlaygroundError("the reply ended without a result")
        return Shapes(req.model).completion(self._finished(req, result))

    @staticmethod
    def _finished(req: CompletionRequest, result: ChatResult) -> ChatResult:
        if req.ignored:
            result.notices.append(f"ignored (not supported by this server): {', '.join(req.ignored)}")
        return result


__all__ = ["Completions", "PLAIN_PERSONA"]

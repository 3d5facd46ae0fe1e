"""The HTTP side: a FastAPI app with ``GET /v1/models`` and ``POST /v1/chat/completions`` (see ``requests.py`` for
the fields), Bearer-token auth when a key is set, OpenAI-shaped errors, and streaming that stops generating when
the client goes away.

The model writes in worker threads (one request at a time, in arrival order: ``fair_queue.py``). A stream is
pumped one event at a time; when the client disconnects, the pump is closed: a reply that is writing stops at
its next token and gives the model back, a request still waiting gives its place up.
"""

from __future__ import annotations

import hmac
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import PlaygroundError
from .completions import Completions
from .errors import ApiError
from .fair_queue import Cancelled
from .requests import parse_json, parse_request

_END = object()


class Pump:
    """Advances a sync iterator from worker threads, one step at a time; ``close`` (from any thread) waits for a
    step in progress, then closes the iterator."""

    def __init__(self, source: Iterator[Any], cancelled: threading.Event):
        self._source, self._cancelled, self._lock = source, cancelled, threading.Lock()

    def step(self) -> Any:
        with self._lock:
            if self._cancelled.is_set():
                return _END
            try:
                return next(self._source, _END)
            except Cancelled:
                return _END

    def close(self) -> None:
        self._cancelled.set()  # a request still waiting for its turn gives it up at once
        with self._lock:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()


async def _pumped(pump: Pump, request: Request) -> AsyncIterator[str]:
    try:
        while True:
            item = await run_in_threadpool(pump.step)
            if item is _END or await request.is_disconnected():
                break
            yield item
    finally:
        with anyio.CancelScope(shield=True):  # runs even when the response task was cancelled (client gone)
            await run_in_threadpool(pump.close)


def _check_key(request: Request, key: str | None) -> None:
    if key is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')", code="invalid_api_key")


def build_api(completions: Completions, api_key: str | None = None) -> FastAPI:
    """The app; ``serve --api`` mounts the web UI beside it, ``serve --api-only`` runs it alone."""
    app = FastAPI(title="Persona Playground API", docs_url=None, redoc_url=None, openapi_url=None)
    pg = completions.pg

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        body = ApiError(500, f"internal error: {type(exc).__name__}: {exc}", kind="server_error").body()
        return JSONResponse(body, status_code=500)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _check_key(request, api_key)
        model_id = pg.backend.model_id
        row = {"object": "model", "created": 0, "owned_by": "persona-playground"}
        rows = [{"id": model_id, **row}]
        rows += [{"id": p, **row, "persona": p, "model": model_id} for p in completions.personas()]
        return {"object": "list", "data": rows}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> StreamingResponse | JSONResponse:
        _check_key(request, api_key)
        body = parse_json(await request.body())
        req = parse_request(body, completions.personas(), pg.backend.model_id)
        session = await run_in_threadpool(completions.session_for, req)
        ticket = completions.queue.ticket()  # 429 here, before anything is sent
        cancelled = threading.Event()
        events = completions.events(req, session, ticket, cancelled)
        if req.stream:
            pump = Pump(completions.chunks(req, events), cancelled)
            weakref.finalize(pump, ticket.release)  # even if the response never started (client gone at once)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(_pumped(pump, request), media_type="text/event-stream", headers=headers)
        try:
            whole = await run_in_threadpool(completions.whole, req, events)
        except PlaygroundError as exc:
            raise ApiError(400, str(exc)) from None
        finally:
            ticket.release()
        return JSONResponse(whole)

    return app


__all__ = ["Pump", "build_api"]

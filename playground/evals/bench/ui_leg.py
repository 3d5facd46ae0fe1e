"""The UI leg of ``python -m playground bench``: time from a message to its first streamed token in a real browser,
against the backend's own first-token time for the same prompt under the same cache conditions.

What is measured, per round:

- ``ui``: in headless Debian chromium (``/usr/bin/chromium``, driven by Playwright; nothing is downloaded), the
  time from the Enter key-down in the message box to the first reply text appearing in the chat (a
  MutationObserver sees the last bot message change from the "…" placeholder to text). The page talks to the
  real UI server (``playground.ui.app.build_ui``, the builder ``launch.py`` uses), started in this process on a free
  127.0.0.1 port.
- ``backend``: in this process, without the UI, the time from the call into ``ChatSession.stream`` to its first
  token event, for the very same prompt (same persona, empty history, same sampling and steering). This is what
  the status line's "first token X s" reports.
- ``server``: the same backend time, taken inside the UI run (the server's own ``ChatSession.stream``); with it,
  ``request`` (key-down to the server starting the reply) and ``delivery`` (server's first token to the page)
  split the UI's overhead. These two compare the browser's clock with the server's (both the system clock of
  this machine), so they are good to a millisecond or two.

``ratio`` is the median UI time over the median backend time. Sampling is greedy and the reply short
(``max_tokens``, 8 by default: only the first token matters), so the page must show the very reply the backend
writes alone (``same_reply``). The long message goes without its trailing blank, as the message box sends it.
Playwright's client runs in this process too; it is idle while a reply streams.

Two cases, interleaved round by round (which goes first alternates):

- ``long``: the benchmark's standard long message (``contenders.long_message``, ~500 prompt tokens), with an empty KV
  cache before every run, UI and backend alike (the cache state of the benchmark's TTFT goal);
- ``short``: a short chat message on a warm persona: its baseline is measured, and before every run the cache
  holds the persona's system prompt (a one-token reply to another message primes it), not the message.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...backends import Backend
from ...chat.session import ChatSession, Playground
from ...definitions.personas import Catalog, Persona
from .contenders import bench_threads, long_message
from .ui_page import ChatPage

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHORT_MESSAGE = "Give me one tip for a calm morning."
PRIME_MESSAGE = "What is a good name for a cat?"  # fills the cache with the system prompt before a warm run
MIN_UI_MAX_TOKENS = 8  # the Max tokens slider's lowest value


@dataclass
class Mark:
    """One call into ``ChatSession.stream``: when it started and when its first token came (both clocks)."""

    start: float  # perf_counter
    start_wall: float  # time.time
    first: float | None = None
    first_wall: float | None = None
    text: str = ""  # the first token
    prompt_tokens: int = 0
    reply: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def ttft(self) -> float:
        if self.first is None:
            raise RuntimeError("the reply produced no token")
        return self.first - self.start


class _TimedSession(ChatSession):
    """A ChatSession that notes when each reply started and when its first token came."""

    def stream(self, message: str, **options: Any) -> Iterator[Any]:
        mark = Mark(time.perf_counter(), time.time(), options={k: v for k, v in options.items() if k != "steering"})
        marks = getattr(self.playground, "marks", None)
        if marks is not None:
            marks.append(mark)
        for event in super().stream(message, **options):
            if event.kind == "token" and mark.first is None:
                mark.first, mark.first_wall, mark.text = time.perf_counter(), time.time(), event.text
            elif event.kind == "done" and event.result is not None:
                mark.prompt_tokens, mark.reply = event.result.prompt_tokens, event.result.reply
            yield event


class _TimedPlayground(Playground):
    """The UI server's playground: every session it hands out (the UI's too) records a Mark per reply."""

    def __init__(self, backend: Backend, catalog: Catalog | None = None):
        super().__init__(loaded_backend=backend, catalog=catalog)
        self.marks: list[Mark] = []

    def session(self, persona: str | Persona) -> ChatSession:
        p = self.catalog.persona(persona) if isinstance(persona, str) else persona
        return _TimedSession(self, p)


def ui_unavailable() -> str | None:
    """Why the browser leg cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; the browser itself is Debian chromium)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_closed(port: int, timeout: float = 10.0) -> bool:
    """Wait until nothing accepts connections on ``port`` (the UI server has stopped); False if it still does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.1)
    return False


def _empty_cache(backend: Backend) -> None:
    """Forget the cached prompt, so the next reply evaluates its whole prompt (as ``run_playground`` does)."""
    if hasattr(backend, "_aligned"):
        backend._aligned = []  # type: ignore[attr-defined]


def _prime(pg: Playground, persona: str) -> None:
    """Leave the persona's system prompt (and another message) in the cache: the state of a warm persona."""
    for _ in pg.session(persona).stream(PRIME_MESSAGE, temperature=0.0, max_tokens=1, record=False):
        pass


def _backend_run(pg: _TimedPlayground, persona: str, message: str, max_tokens: int) -> Mark:
    """The backend's own first-token time: a fresh session, the same message, no UI."""
    for _ in pg.session(persona).stream(message, temperature=0.0, max_tokens=max_tokens, record=False):
        pass
    return pg.marks[-1]


def _ui_run(pg: _TimedPlayground, page: ChatPage, message: str) -> dict[str, Any]:
    before = len(pg.marks)
    seen = page.send(message)
    page.clear()
    if len(pg.marks) != before + 1:
        raise RuntimeError(f"expected one reply on the server, saw {len(pg.marks) - before}")
    mark = pg.marks[-1]
    assert mark.first_wall is not None
    if mark.options.get("temperature") != 0.0 or mark.options.get("max_tokens") != page.max_tokens:
        raise RuntimeError(f"the page sent {mark.options}, not greedy with max_tokens={page.max_tokens}")
    return {
        "ui_s": (seen["first"] - seen["sent"]) / 1000,
        "server_s": mark.ttft,
        "request_s": mark.start_wall - seen["sent"] / 1000,
        "delivery_s": seen["first"] / 1000 - mark.first_wall,
        "prompt_tokens": mark.prompt_tokens,
        "first_text": seen["text"][:40],
        "reply": mark.reply,
    }


def _summary(runs: list[dict[str, Any]], message: str, cache: str) -> dict[str, Any]:
    ui = _median([r["ui_s"] for r in runs])
    backend = _median([r["backend_s"] for r in runs])
    return {
        "message_chars": len(message),
        "prompt_tokens": runs[0]["prompt_tokens"] if runs else 0,
        "cache": cache,
        "ui_ttft_s": round(ui, 4),
        "backend_ttft_s": round(backend, 4),
        "ratio": round(ui / backend, 3) if backend > 0 else float("nan"),
        "server_ttft_s": round(_median([r["server_s"] for r in runs]), 4),
        "request_s": round(_median([r["request_s"] for r in runs]), 4),
        "delivery_s": round(_median([r["delivery_s"] for r in runs]), 4),
        "same_reply": all(r["reply"] == r["backend_reply"] for r in runs),  # greedy: UI and backend agree
        "runs": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
    }


CACHES = {
    "long": "cold: empty KV cache before every run",
    "short": "warm: persona baseline measured, system prompt cached, message not",
}


@contextmanager
def _ui_server(pg: _TimedPlayground, persona: str) -> Iterator[tuple[str, dict[str, bool]]]:
    """The real UI (as ``launch.py`` builds it) on a free 127.0.0.1 port: yields its URL and a dict whose
    ``server_closed`` says, after the block, whether nothing answers on the port any more."""
    from ...ui.app import build_ui, launch_options

    port = _free_port()
    demo = build_ui(pg, persona)
    demo.queue(default_concurrency_limit=4, max_size=64)  # as launch.py
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    state = {"server_closed": False}
    try:
        yield f"http://127.0.0.1:{port}/", state
    finally:
        demo.close()
        state["server_closed"] = _wait_closed(port)


def _case_row(
    pg: _TimedPlayground, page: ChatPage, persona: str, case: str, message: str, ui_first: bool
) -> dict[str, Any]:
    """One round of one case: the UI run and the backend run (in the order given), each from the case's cache
    state; raises when the two did not see the same prompt."""
    row: dict[str, Any] = {}
    for leg in ("ui", "backend") if ui_first else ("backend", "ui"):
        if case == "long":
            _empty_cache(pg.backend)
        else:
            _prime(pg, persona)
        if leg == "ui":
            row.update(_ui_run(pg, page, message))
        else:
            mark = _backend_run(pg, persona, message, page.max_tokens)
            row["backend_s"] = mark.ttft
            row["backend_prompt_tokens"] = mark.prompt_tokens
            row["backend_reply"] = mark.reply
    if row["backend_prompt_tokens"] != row["prompt_tokens"]:
        raise RuntimeError(
            f"{case}: the UI sent {row['prompt_tokens']} prompt tokens, the backend run "
            f"{row['backend_prompt_tokens']}; the runs are not comparable"
        )
    return row


def _rounds(
    pg: _TimedPlayground,
    page: ChatPage,
    persona: str,
    messages: dict[str, str],
    warmup: str,
    rounds: int,
    log: Callable[[str], None],
) -> dict[str, list[dict[str, Any]]]:
    """A warm-up on ``warmup``, then ``rounds`` rounds of every case, the UI going first in even rounds."""
    # warm-up: the persona's baseline, first-call costs of the server, the page and the model
    _backend_run(pg, persona, warmup, page.max_tokens)
    _ui_run(pg, page, warmup)
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in messages}
    for r in range(rounds):
        for case, message in messages.items():
            row = _case_row(pg, page, persona, case, message, ui_first=r % 2 == 0)
            runs[case].append(row)
            log(
                f"UI round {r + 1}/{rounds}, {case}: first token in the page {row['ui_s']:.3f} s, "
                f"backend alone {row['backend_s']:.3f} s ({row['ui_s'] / row['backend_s']:.2f}x)"
            )
    return runs


def measure_ui_first_token(
    backend: Backend | None = None,
    *,
    catalog: Catalog | None = None,
    rounds: int = 3,
    prompt_tokens: int = 500,
    max_tokens: int = MIN_UI_MAX_TOKENS,
    persona: str = "assistant",
    short_message: str = SHORT_MESSAGE,
    cases: tuple[str, ...] = ("long", "short"),
    timeout_s: float = 120.0,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Time to the first streamed token in the browser against the backend's own, for the long and short cases.

    Returns ``{"long": {...}, "short": {...}, ...}`` with medians over ``rounds`` (``ui_ttft_s``,
    ``backend_ttft_s``, ``ratio``, and the ``server_ttft_s`` / ``request_s`` / ``delivery_s`` breakdown), or
    ``{"skipped": "<why>"}`` when Playwright or chromium is missing or chromium does not start.
    """
    why = ui_unavailable()
    if why is not None:
        return {"skipped": why}
    from playwright.sync_api import sync_playwright

    if max_tokens < MIN_UI_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_UI_MAX_TOKENS} (the UI's slider minimum)")
    pg = _TimedPlayground(backend if backend is not None else Playground().backend, catalog)
    # the UI sends what the box holds without surrounding blanks (ChatState.stream strips it): so does the backend
    texts = {"long": long_message(pg.backend, pg, prompt_tokens)[0].strip(), "short": short_message.strip()}
    messages = {case: texts[case] for case in cases}
    with _ui_server(pg, persona) as (url, server), sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # a broken chromium install must not take the benchmark down
            return {"skipped": f"chromium did not start: {str(exc).splitlines()[0]}"}
        try:
            page = ChatPage(browser, url, max_tokens, timeout_s)
            runs = _rounds(pg, page, persona, messages, texts["short"], rounds, log)
            page.close()
            version = browser.version
        finally:
            browser.close()
    out: dict[str, Any] = {
        "rounds": rounds,
        "max_tokens": max_tokens,
        "persona": persona,
        "threads": bench_threads(),
        "browser": f"chromium {version} (headless, Playwright)",
        "server_closed": server["server_closed"],  # nothing answers on the UI's port any more: later legs measure alone
    }
    for case in cases:
        out[case] = _summary(runs[case], messages[case], CACHES[case])
    return out

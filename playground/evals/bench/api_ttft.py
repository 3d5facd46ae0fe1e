"""``python -m playground bench --api``: time to first token through the OpenAI-compatible API vs the library.

Two legs, each a fresh process with the default model, one at a time, alternating over ``rounds``:

- ``library``: the worker streams ``replies`` replies with ``ChatSession.stream`` and times the first token;
- ``api``: the worker serves ``--api-only``-style (uvicorn, the same app) and this process is the client: it
  posts streamed requests with httpx and times the first chunk that carries text.

Same persona, message, greedy sampling, every probe and the default guard live in both; a warm-up reply first.
The ratio is api / library of the medians from the same run.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from ...paths import REPO_ROOT
from .isolation import settle

PERSONA, MESSAGE, TOKENS = "pirate", "Tell me about your ship.", 16


def _library(replies: int) -> list[float]:
    from ...chat.session import Playground

    pg = Playground()
    session = pg.session(PERSONA)
    session.send("Hello!", max_tokens=4, temperature=0, record=False)
    firsts = []
    for _ in range(replies):
        started = time.perf_counter()
        for event in session.stream(MESSAGE, max_tokens=TOKENS, temperature=0, record=False):
            if event.kind == "token":
                firsts.append(time.perf_counter() - started)
                break
    return firsts


def _serve(port: int) -> None:
    import uvicorn

    from ...api.completions import Completions
    from ...api.server import build_api
    from ...chat.session import Playground

    pg = Playground()
    pg.chat(PERSONA, "Hello!", max_tokens=4, temperature=0)  # same warm-up as the library leg
    print("ready", flush=True)
    uvicorn.run(build_api(Completions(pg)), host="127.0.0.1", port=port, log_level="warning")


def _first_chunk(port: int) -> float:
    import httpx

    body = {"model": PERSONA, "messages": [{"role": "user", "content": MESSAGE}], "max_tokens": TOKENS,
            "temperature": 0, "stream": True}  # fmt: skip
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120) as resp:
        for line in resp.iter_lines():
            if first is None and line.startswith("data: {") and '"content"' in line:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("the API stream had no text")
    return first


def _api(replies: int) -> list[float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "playground.evals.bench.api_ttft", "--serve", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the API worker did not start")
        for _ in range(100):  # uvicorn binds right after "ready"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return [_first_chunk(port) for _ in range(replies)]
    finally:
        proc.terminate()
        proc.wait(10)


def _library_leg(replies: int) -> list[float]:
    cmd = [sys.executable, "-m", "playground.evals.bench.api_ttft", "--library", str(replies)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(rounds: int = 2, replies: int = 5, log: Callable[[str], None] = print) -> dict[str, Any]:
    legs: dict[str, Callable[[int], list[float]]] = {"library": _library_leg, "api": _api}
    samples: dict[str, list[float]] = {name: [] for name in legs}
    busy = 0
    for r in range(rounds):
        for name in legs if r % 2 == 0 else reversed(list(legs)):
            busy += bool(settle(name)["busy"])
            samples[name] += legs[name](replies)
            log(f"round {r + 1} {name}: first token {statistics.median(samples[name][-replies:]) * 1000:.0f} ms")
    median = {name: statistics.median(v) for name, v in samples.items()}
    return {
        "api_ttft": {
            "median_s": {k: round(v, 4) for k, v in median.items()},
            "ratio_api_vs_library": round(median["api"] / median["library"], 3),
            "samples": {k: [round(x, 4) for x in v] for k, v in samples.items()},
            "setup": {
                "rounds": rounds,
                "replies_per_leg": replies,
                "persona": PERSONA,
                "max_tokens": TOKENS,
                "legs_started_on_a_busy_machine": busy,
            },  # fmt: skip
        }
    }


if __name__ == "__main__" and sys.argv[1:2] == ["--library"]:
    print(json.dumps(_library(int(sys.argv[2]))), flush=True)
elif __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve(int(sys.argv[2]))

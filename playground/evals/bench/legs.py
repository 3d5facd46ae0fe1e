"""The legs of ``python -m playground bench`` after the contender rounds, on a playground in the bench's own process.

Each leg starts only once the previous one has stopped (``isolation.settle``): the UI leg (first streamed token in
the browser, ``ui_leg.py``), prompt screening, a growing conversation with and without prefix-cache reuse (and the
same conversation on transformers for the short-message first-token time), extraction of one trait, and finally
the cold start of ``launch.py`` in a child process with its peak RSS.
"""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...chat.session import Playground
from ...paths import REPO_ROOT
from .contenders import WARMUP_TOKENS, bench_threads, hf_playground, run_playground
from .isolation import settle
from .ui_leg import measure_ui_first_token


def conversation_curve(pg: Playground, turns: int, reuse: bool, max_tokens: int = 32) -> list[dict[str, float]]:
    """Per-turn latency of a growing conversation (the same scripted user messages every time)."""
    session = pg.session("assistant")
    out = []
    for t in range(turns):
        if not reuse:
            pg.backend._aligned = []  # type: ignore[attr-defined]
        started = time.perf_counter()
        result = session.send(
            f"Tell me one more fact about the ocean, number {t + 1}.", temperature=0.0, max_tokens=max_tokens
        )
        out.append(
            {
                "turn": t + 1,
                "seconds": time.perf_counter() - started,
                "prompt_tokens": result.prompt_tokens,
                "ttft": result.timing["first_token_s"],
                "reply_tokens": len(result.tokens),
            }
        )
    return out


HF_TURNS = 8  # turns of the transformers contender's conversation (its replies are slow to generate)


def hf_conversation(turns: int) -> list[dict[str, float]]:
    """The same scripted conversation on transformers with hooks (same probes, guard): its per-turn latency.
    Runs in this process after the llama.cpp legs have settled; the model is released on return."""
    pg = hf_playground(bench_threads())
    try:
        pg.session("assistant").send("Hello!", temperature=0.0, max_tokens=WARMUP_TOKENS)  # first-call costs
        return conversation_curve(pg, turns, reuse=True)
    finally:
        del pg  # the only reference to the model
        gc.collect()


def short_message_ttft(playground: list[dict[str, float]], hf: list[dict[str, float]]) -> dict[str, Any]:
    """Median first-token time of turns 2.. of both conversations (a short message in a running chat)."""
    turns = range(1, min(len(playground), len(hf)))
    if not turns:
        return {}
    mine = float(np.median([playground[t]["ttft"] for t in turns]))
    theirs = float(np.median([hf[t]["ttft"] for t in turns]))
    return {
        "conversation_hf": hf,
        "short_message_ttft": {
            "turns": f"2-{len(turns) + 1}",
            "playground_s": round(mine, 4),
            "hf_s": round(theirs, 4),
            "ratio": round(mine / theirs, 3) if theirs > 0 else None,
        },
    }


def cold_start(timeout: float = 120.0) -> dict[str, float]:
    """Start ``launch.py`` in a child process; seconds until the page answers, then its peak RSS after one chat."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = REPO_ROOT
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(root / "launch.py"), "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = None
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - started
                        break
            except OSError:
                time.sleep(0.1)
        if ready is None:
            raise RuntimeError("launch.py did not answer in time")
        from gradio_client import Client

        Client(f"http://127.0.0.1:{port}/", verbose=False).predict("Hello!", "assistant", "", api_name="/chat")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return {"cold_start_s": ready, "peak_rss_mb": hwm / 1024}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def model_legs(
    prep: dict[str, Any],
    rounds: int,
    prompt_tokens: int,
    turns: int,
    extract: bool,
    ui: bool,
    settled: list[dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The legs after the contenders (UI, screening, conversation, extraction), on a playground in this process,
    loaded only now; before each, everything of the previous leg has stopped (``settle``)."""
    pg = Playground()
    backend = pg.backend
    run_playground(pg, prep["message"], WARMUP_TOKENS)  # the persona baseline, as in the rounds' warm-up
    out: dict[str, Any] = {}
    if ui:
        settled.append(settle("ui"))
        out.update(ui_leg(backend, pg, rounds, prompt_tokens, log))
    screening = pg.screening
    if screening is not None:
        settled.append(settle("screening"))
        screening.score_prompt(backend, prep["prompt"])  # warm-up
        t = time.perf_counter()
        for _ in range(3):
            screening.score_prompt(backend, prep["prompt"])
        out["screen_prompt_s"] = round((time.perf_counter() - t) / 3, 4)
    if turns:
        settled.append(settle("conversation"))
        with_cache = conversation_curve(pg, turns, reuse=True)
        without = conversation_curve(pg, turns, reuse=False)
        out["conversation"] = {"reuse": with_cache, "no_reuse": without}
        log(
            f"{turns}-turn conversation: last turn {with_cache[-1]['seconds']:.2f}s with cache reuse, "
            f"{without[-1]['seconds']:.2f}s without"
        )
        settled.append(settle("conversation with transformers"))
        out.update(short_message_ttft(with_cache, hf_conversation(min(turns, HF_TURNS))))
        log(f"short message in a running chat, first token: {out['short_message_ttft']}")
    if extract:
        from ...definitions.traits import load_trait
        from ...steering.extraction import extract_trait

        settled.append(settle("extraction"))
        t = time.perf_counter()
        extract_trait(backend, load_trait("humorous"), progress=False)
        out["extract_s"] = round(time.perf_counter() - t, 1)
        log(f"extraction of one trait: {out['extract_s']} s")
    return out


def ui_leg(backend: Any, pg: Playground, rounds: int, prompt_tokens: int, log: Callable[[str], None]) -> dict[str, Any]:
    """First streamed token in the browser vs the backend's own (``ui_leg.py``), as ``run_bench`` result keys."""
    leg = measure_ui_first_token(backend, catalog=pg.catalog, rounds=rounds, prompt_tokens=prompt_tokens, log=log)
    out: dict[str, Any] = {"ui": leg}
    if "skipped" in leg:
        log(f"UI leg skipped: {leg['skipped']}")
        return out
    for prefix, case in (("ui", leg["long"]), ("ui_short", leg["short"])):
        out[f"{prefix}_ttft_s"] = case["ui_ttft_s"]
        out[f"{prefix}_backend_ttft_s"] = case["backend_ttft_s"]
        out[f"{prefix}_ttft_ratio"] = case["ratio"]
    return out

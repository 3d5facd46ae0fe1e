"""One contender of ``python -m playground bench`` in a process of its own: ``python -m playground.evals.bench.worker``.

The benchmark's parent process holds no model and no thread team while it measures: each contender (plain
llama-cpp-python, with and without flash attention, the playground, transformers with hooks) lives in one of
these workers, loads its model once and then runs one measured generation per request. So a contender cannot
be slowed by another one's OpenMP/torch thread team, its model or a server left behind in the same process.

Protocol, JSON lines. The parent writes the spec as the first line on the worker's stdin::

    {"kind": "plain" | "plain_fa" | "playground" | "hf" | "prompt", "threads": 2, "model_path": "...",
     "prompt": [token ids], "message": "...", "prompt_tokens": 500}

and the worker answers ``{"ready": {...}}`` once its model is loaded (kind ``prompt`` is a one-shot job: its
answer carries the benchmark's long message and its prompt tokens, then it exits). After that, per line:
``{"cmd": "run", "n": 64}`` → ``{"run": {"ttft": s, "tokens": n, "total": s}}``; ``{"cmd": "quit"}`` or the end
of stdin → exit 0. A failure answers ``{"error": "<traceback>"}`` and exits 1. The answers go over a private
copy of stdout; file descriptor 1 itself is pointed at stderr, so stray prints of C libraries cannot corrupt them.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict
from typing import IO, Any

from .contenders import Run

RunFn = Callable[[int], Run]


def _plain(spec: dict[str, Any], flash_attn: bool) -> tuple[dict[str, Any], RunFn]:
    from ...backends.compute_thread import run_on_compute_thread
    from .contenders import _plain_llama, run_plain

    llm = run_on_compute_thread(lambda: _plain_llama(spec["model_path"], spec["threads"], flash_attn=flash_attn))
    prompt = list(spec["prompt"])
    return {}, lambda n: run_on_compute_thread(lambda: run_plain(llm, prompt, n))


def _playground(spec: dict[str, Any]) -> tuple[dict[str, Any], RunFn]:
    from ...chat.session import Playground
    from .contenders import run_playground

    pg = Playground()
    pg.backend  # noqa: B018  # load the model now, not inside the first measured run
    check = getattr(pg.backend, "decode_check", None)
    info = {
        "probes": sorted(pg.probes.vectors),
        "policy": pg.policies.policy.name,
        "generation_path": check.generation_path if check else "reference",
    }
    message = spec["message"]
    return info, lambda n: run_playground(pg, message, n)


def _hf(spec: dict[str, Any]) -> tuple[dict[str, Any], RunFn]:
    from .contenders import hf_playground, run_hf

    pg = hf_playground(int(spec["threads"]))
    hf = pg.backend
    prompt = list(spec["prompt"])
    return {}, lambda n: run_hf(hf, pg, prompt, n)


def _prompt(spec: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's long message and its chat prompt's tokens, worked out with the playground's own backend."""
    from ...chat.session import Playground
    from .contenders import long_message

    pg = Playground()
    message, prompt = long_message(pg.backend, pg, int(spec["prompt_tokens"]))
    return {"message": message, "prompt": prompt, "model_path": str(pg.backend.source.path)}  # type: ignore[attr-defined]


def load(spec: dict[str, Any]) -> tuple[dict[str, Any], RunFn]:
    kind = spec["kind"]
    if kind in ("plain", "plain_fa"):
        return _plain(spec, flash_attn=kind == "plain_fa")
    if kind == "playground":
        return _playground(spec)
    if kind == "hf":
        return _hf(spec)
    raise ValueError(f"unknown contender kind {kind!r}")


def _answer(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(requests: IO[str], out: IO[str]) -> int:
    """Read the spec, load, then answer run requests until told to quit (or stdin ends)."""
    try:
        spec = json.loads(requests.readline())
        if spec["kind"] == "prompt":
            _answer(out, {"ready": _prompt(spec)})
            return 0
        info, run = load(spec)
        _answer(out, {"ready": {"pid": os.getpid(), **info}})
        for line in requests:
            request = json.loads(line)
            if request.get("cmd") == "quit":
                break
            _answer(out, {"run": asdict(run(int(request["n"])))})
    except Exception:
        _answer(out, {"error": traceback.format_exc()})
        return 1
    return 0


def main() -> int:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything else written to stdout lands on stderr
    return serve(sys.stdin, out)


if __name__ == "__main__":
    sys.exit(main())

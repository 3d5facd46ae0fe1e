"""``python -m playground bench``: what live probes, guardrails and steering cost, measured side by side.

On the same model file, the same ~500-token prompt and the same number of new tokens, interleaved over several
rounds (these machines are shared and noisy, so only ratios mean much):

- (a) ``plain``: llama-cpp-python's own ``Llama.generate`` with no eval callback, default settings;
- (b) ``playground``: ``ChatSession.stream`` with every shipped probe live (all traits + persona_drift),
  the default guard policy (prompt screening, per-token checks) and one steered trait;
- (c) ``hf``: the transformers backend with forward hooks doing the same probes and steering (the approach
  of the persona-vectors and repeng code);
- the UI leg (``playground.evals.bench.ui_leg``): the time from pressing Enter in the real UI, in headless chromium, to
  the first streamed token on the page, against the backend's own first-token time for the same prompt
  under the same cache state (the long prompt with an empty cache, and a short message on a warm persona).

Hygiene (``playground.evals.bench.isolation``): each contender of (a)/(b)/(c) (and plain llama.cpp with flash attention,
a reference) runs in a worker process of its own (``playground.evals.bench.worker``); this process holds no model and
no thread team while they measure, and before each measured run it waits until the other workers and the machine
are idle (the result counts the runs that waited or were measured while something was busy). First of all, before
any contender is loaded, plain llama-cpp-python runs in a fresh process of its own: when the bench's plain median
falls below ``BASELINE_FACTOR`` of that, something slowed the baseline and the ratios are not reported
(``"baseline": {"ok": false, "reason": ...}``; the CLI exits with code 3).

Each round starts from an empty KV cache for all three, so time-to-first-token includes the whole prompt.
Also measured, after the contender workers have exited and each leg only once the previous one has stopped
(its server closed, its browser and child processes gone): extraction of one trait, prompt screening, a 20-turn
conversation with and without prefix-cache reuse, and (in a child process) cold start of ``launch.py`` to a ready
UI and its peak RSS.

This module runs the rounds and puts the result together (``run_bench``); the contenders' measured generations
are in ``contenders.py``, the later legs in ``legs.py`` and the report (docs/PERFORMANCE.md) in ``perf_report.py``.
"""

from __future__ import annotations

import gc
import os
import platform
from collections.abc import Callable
from typing import Any

from .contenders import STEERED, WARMUP_TOKENS, Run, Series, bench_threads
from .isolation import QuietLog, Worker, apply_baseline, baseline_verdict, settle
from .legs import cold_start, model_legs

# plain_fa is a reference, not a goal: llama-cpp-python with flash attention, which the playground uses for
# generation only, and only where its start-up check found it faster (backends/decode_check.py).
CONTENDERS = ["plain", "playground", "hf", "plain_fa"]
FRESH_RUNS = 2  # measured runs of the fresh-process baseline


def _spec(kind: str, prep: dict[str, Any], threads: int) -> dict[str, Any]:
    return {"kind": kind, "threads": threads, **prep}


def prepare_prompt(prompt_tokens: int, threads: int) -> dict[str, Any]:
    """The long message, its prompt tokens and the model file, from a short-lived worker (no model stays here)."""
    worker = Worker("prompt", {"kind": "prompt", "prompt_tokens": prompt_tokens, "threads": threads})
    try:
        return worker.ready()
    finally:
        worker.close()


def _measure(worker: Worker, n: int, others: list[int], quiet: QuietLog) -> Run:
    quiet.check(worker.name, others)
    return Run(**worker.run(n))


def fresh_plain(prep: dict[str, Any], new_tokens: int, threads: int, quiet: QuietLog) -> Series:
    """Plain llama-cpp-python in a fresh process of its own, before any contender is loaded: the baseline's baseline."""
    worker = Worker("fresh_plain", _spec("plain", prep, threads))
    try:
        worker.ready()
        worker.run(WARMUP_TOKENS)
        return Series([_measure(worker, new_tokens, [], quiet) for _ in range(FRESH_RUNS)])
    finally:
        worker.close()


def contender_rounds(
    prep: dict[str, Any], rounds: int, new_tokens: int, threads: int, quiet: QuietLog, log: Callable[[str], None]
) -> tuple[dict[str, Series], dict[str, Any]]:
    """The interleaved rounds, each contender in its own worker process; every worker has exited on return."""
    workers: dict[str, Worker] = {}
    try:
        for name in CONTENDERS:
            workers[name] = Worker(name, _spec(name, prep, threads))
        info: dict[str, Any] = {}
        for worker in workers.values():
            info.update({k: v for k, v in worker.ready().items() if k != "pid"})
        # warm-up: the persona baseline for the guard, caches, first-call costs
        for name in ("playground", "plain", "plain_fa", "hf"):
            workers[name].run(WARMUP_TOKENS)
        series = {name: Series() for name in CONTENDERS}
        for r in range(rounds):
            for name in CONTENDERS[r % len(CONTENDERS) :] + CONTENDERS[: r % len(CONTENDERS)]:
                others = [w.pid for n, w in workers.items() if n != name]
                series[name].runs.append(_measure(workers[name], new_tokens, others, quiet))
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v.runs[-1].tok_s:.1f} tok/s" for k, v in series.items()))
        return series, info
    finally:
        for worker in workers.values():
            worker.close()


def contender_summary(series: dict[str, Series], fresh: Series) -> dict[str, Any]:
    """Medians, ratios and the baseline verdict (ratios None when the bench's plain run was slowed)."""
    out: dict[str, Any] = {}
    for name, s in series.items():
        out[f"{name}_tok_s"] = round(s.median("tok_s"), 2)
        out[f"{name}_ttft_s"] = round(s.median("ttft"), 4)
    out["fresh_plain_tok_s"] = round(fresh.median("tok_s"), 2)
    out["fresh_plain_ttft_s"] = round(fresh.median("ttft"), 4)
    out["ratio_vs_plain"] = round(out["playground_tok_s"] / out["plain_tok_s"], 3)
    out["speedup_vs_hf"] = round(out["playground_tok_s"] / out["hf_tok_s"], 2)
    out["ttft_ratio"] = round(out["playground_ttft_s"] / out["plain_ttft_s"], 3)
    return apply_baseline(out, baseline_verdict(fresh.median("tok_s"), series["plain"].median("tok_s")))


def run_bench(
    *,
    rounds: int = 5,
    new_tokens: int = 64,
    prompt_tokens: int = 500,
    turns: int = 20,
    extract: bool = True,
    cold: bool = True,
    ui: bool = True,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    threads = bench_threads()
    quiet = QuietLog()
    prep = prepare_prompt(prompt_tokens, threads)
    log(f"prompt {len(prep['prompt'])} tokens, {new_tokens} new tokens, {rounds} rounds, {threads} threads")
    fresh = fresh_plain(prep, new_tokens, threads, quiet)
    log(f"fresh-process plain llama-cpp-python: {fresh.median('tok_s'):.1f} tok/s")
    series, info = contender_rounds(prep, rounds, new_tokens, threads, quiet, log)
    out: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "threads": threads,
        "prompt_tokens": len(prep["prompt"]),
        "new_tokens": new_tokens,
        "rounds": rounds,
        "probes": info["probes"],
        "steered": STEERED,
        "policy": info["policy"],
        "generation_path": info.get("generation_path", "reference"),
        "isolation": "each contender in its own worker process (playground/evals/bench/worker.py)",
    }
    out.update(contender_summary(series, fresh))
    out["quiet"] = quiet.as_dict()
    # a fresh baseline measured on a busy machine is low, and the check then lets anything through
    out["baseline"]["fresh_runs_busy"] = quiet.by_contender.get("fresh_plain", {}).get("busy", 0)
    if not out["baseline"]["ok"]:
        log(f"baseline check failed: {out['baseline']['reason']}")
    settled = [settle("later legs")]
    out.update(model_legs(prep, rounds, prompt_tokens, turns, extract, ui, settled, log))
    gc.collect()  # the legs' model goes before the cold start is measured
    if cold:
        settled.append(settle("cold start"))
        out.update({k: round(v, 2) for k, v in cold_start().items()})
    out["settle"] = settled
    return out

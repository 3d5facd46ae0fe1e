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
"""

from __future__ import annotations

import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...chat.session import Playground
from ...paths import REPO_ROOT
from ...prompt.conversation import plan_prompt
from .isolation import QuietLog, Worker, apply_baseline, baseline_verdict, settle

FILLER = (
    "The old lighthouse keeper kept a logbook of every ship that passed the cape, the weather at dawn and dusk, "
    "and the small events of island life: a gull with a broken wing, a storm that flooded the cellar, the day "
    "the supply boat arrived two weeks late with letters from the mainland. "
)
STEERED = {"humorous": 0.5}
NOTES_HEADING = "## Notes (hand-written)"


@dataclass
class Run:
    ttft: float
    tokens: int
    total: float

    @property
    def tok_s(self) -> float:
        decode = self.total - self.ttft
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs)) if self.runs else float("nan")


def long_message(backend: Any, pg: Playground, target_tokens: int) -> tuple[str, list[int]]:
    """A user message whose full chat prompt (assistant persona) is about ``target_tokens`` long."""
    persona = pg.catalog.persona("assistant")
    system = pg.system_prompt_for(persona)
    text = "Here is a page from a diary. Continue the story in the same style.\n\n"
    while True:
        plan = plan_prompt(backend, persona, system, [], text, 64)
        if len(plan.tokens) >= target_tokens:
            return text, plan.tokens
        text += FILLER


def _timed(stream: Any) -> Run:
    start = time.perf_counter()
    first, count = None, 0
    for _ in stream:
        count += 1
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return Run(first if first is not None else total, count, total)


def _plain_llama(model_path: str, threads: int, flash_attn: bool = False) -> Any:
    import llama_cpp

    return llama_cpp.Llama(
        model_path=model_path,
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=flash_attn,
        verbose=False,
    )


def run_plain(llm: Any, prompt: list[int], n: int) -> Run:
    import llama_cpp

    eos = [t for t in range(llm.n_vocab()) if llama_cpp.llama_token_is_eog(llm._model.vocab, t)]

    def no_end(_ids: Any, logits: np.ndarray) -> np.ndarray:
        logits[eos] = -np.inf  # same length for every contender
        return logits

    llm.reset()

    def gen() -> Any:
        for i, _tok in enumerate(
            llm.generate(prompt, temp=0.0, repeat_penalty=1.1, logits_processor=llama_cpp.LogitsProcessorList([no_end]))
        ):
            yield i
            if i + 1 >= n:
                return

    return _timed(gen())


def run_playground(pg: Playground, message: str, n: int) -> Run:
    pg.backend._aligned = []  # type: ignore[attr-defined]  # start from an empty cache, like the others
    session = pg.session("assistant")
    tokens = (
        e
        for e in session.stream(message, temperature=0.0, max_tokens=n, steering=STEERED, record=False)
        if e.kind == "token"
    )
    return _timed(tokens)


def run_hf(hf: Any, pg: Playground, prompt: list[int], n: int) -> Run:
    from ...backends.sampling import Sampling

    probes = pg.probes
    steering = pg.steering_for(STEERED)

    def gen() -> Any:
        for step in hf.stream(
            prompt, Sampling(temperature=0.0, max_tokens=n), steering=steering, capture=probes.layers
        ):
            yield probes.score_one(step.hidden)

    return _timed(gen())


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


def hf_playground(threads: int) -> Playground:
    """The transformers contender: the default model through transformers with forward hooks (the same model id,
    so the same probe and steering vectors), with ``threads`` torch threads here and on the compute thread."""
    import torch

    from ...backends import load_backend
    from ...backends.compute_thread import run_on_compute_thread

    torch.set_num_threads(threads)  # the same number of threads for every contender
    run_on_compute_thread(lambda: torch.set_num_threads(threads))
    return Playground(loaded_backend=load_backend(None, backend="transformers"))


def hf_conversation(turns: int) -> list[dict[str, float]]:
    """The same scripted conversation on transformers with hooks (same probes, guard): its per-turn latency.
    Runs in this process after the llama.cpp legs have settled; the model is released on return."""
    pg = hf_playground(_threads())
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


# plain_fa is a reference, not a goal: llama-cpp-python with flash attention, which the playground uses for
# generation only, and only where its start-up check found it faster (backends/decode_check.py).
CONTENDERS = ["plain", "playground", "hf", "plain_fa"]
WARMUP_TOKENS = 4
FRESH_RUNS = 2  # measured runs of the fresh-process baseline


def _threads() -> int:
    return int(os.environ.get("PLAYGROUND_THREADS", 0)) or max(1, min(os.cpu_count() or 1, 8))


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
    threads = _threads()
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
    """First streamed token in the browser vs the backend's own (``bench_ui``), as ``run_bench`` result keys."""
    from .ui_leg import measure_ui_first_token

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


def _ui_lines(result: dict[str, Any]) -> list[str]:
    leg = result.get("ui")
    if not leg:
        return []
    if "skipped" in leg:
        return ["", f"First streamed token in the browser: not measured ({leg['skipped']})."]
    lines = [
        "",
        "First streamed token in the UI (headless chromium: Enter pressed → first reply text on the page) against "
        "the backend's own first-token time (`ChatSession.stream`, no UI), same prompt, same cache state, "
        f"interleaved, median of {leg['rounds']} rounds:",
        "",
        "| | in the browser | backend alone | ratio (goal ≤ 1.5×) |",
        "|---|---|---|---|",
    ]
    for key, label in (("long", "long prompt, empty cache"), ("short", "short message, warm persona")):
        case = leg[key]
        lines.append(
            f"| {label} ({case['prompt_tokens']} prompt tokens) | {case['ui_ttft_s']} s | "
            f"{case['backend_ttft_s']} s | **{case['ratio']}** |"
        )
    short = leg["short"]
    lines += [
        "",
        f"Where the short message's time goes: key press → server starts the reply {short['request_s'] * 1000:.0f} ms, "
        f"model to its first token inside the UI server {short['server_ttft_s'] * 1000:.0f} ms (alone "
        f"{short['backend_ttft_s'] * 1000:.0f} ms), server's first token → text on the page "
        f"{short['delivery_s'] * 1000:.0f} ms.",
    ]
    return lines


def _baseline_lines(result: dict[str, Any]) -> list[str]:
    """The baseline check and the quiet-machine counts, for the report (nothing for results that predate them)."""
    base = result.get("baseline")
    if not base:
        return []
    share = f" ({base['share']}×)" if "share" in base else ""
    verdict = "ok" if base["ok"] else f"**failed, ratios not reported**: {base['reason']}"
    lines = [
        f"- Baseline check: plain llama-cpp-python made {base['bench_plain_tok_s']} tokens/s in the bench against "
        f"{base['fresh_plain_tok_s']} in a fresh process of its own before any contender was loaded{share}; "
        f"ratios are reported at ≥ {base['factor']}×: {verdict}",
    ]
    if base.get("fresh_runs_busy"):
        lines.append(f"  (careful: {base['fresh_runs_busy']} of the fresh runs were measured on a busy machine)")
    quiet = result.get("quiet")
    if quiet:
        lines.append(
            f"- Each contender in its own worker process; of {quiet['checked']} measured runs, {quiet['waited']} "
            f"waited for the other workers and the machine to go idle and {quiet['busy']} were measured while "
            f"something was still busy ({quiet['busy_if']}; the bench's own processes in "
            f"{quiet.get('busy_bench', '?')}, the machine in {quiet.get('busy_machine', '?')})"
        )
    left = [f"{name} (before {step['before']})" for step in result.get("settle", []) for name in step["terminated"]]
    if left:
        lines.append(f"- Left running by a leg and terminated before the next: {', '.join(left)}")
    return lines


def _plot(result: dict[str, Any], path: Path) -> None:
    """perf.png: the contenders' decoding speed and the conversation curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = ["plain", "playground", "hf"]
    labels = ["(a) llama.cpp\nplain", "(b) playground\nprobes+guard+steer", "(c) transformers\nhooks"]
    colors = ["grey", "C0", "C1"]
    if "plain_fa_tok_s" in result:
        names, colors = names + ["plain_fa"], colors + ["silver"]
        labels = labels + ["llama.cpp plain\nflash attn (ref.)"]
    axes[0].bar(labels, [result[f"{n}_tok_s"] for n in names], color=colors)
    axes[0].tick_params(axis="x", labelsize=7)
    axes[0].set_ylabel("tokens / s (median)")
    axes[0].set_title(f"Decoding, {result['prompt_tokens']}-token prompt")
    conv = result.get("conversation")
    if conv:
        for key, style in (("reuse", "-o"), ("no_reuse", "--x")):
            axes[1].plot(
                [c["turn"] for c in conv[key]],
                [c["seconds"] for c in conv[key]],
                style,
                label="prefix cache reused" if key == "reuse" else "prompt re-evaluated",
            )
        hf = result.get("conversation_hf")
        if hf:
            axes[1].plot([c["turn"] for c in hf], [c["seconds"] for c in hf], ":s", color="C1", label="transformers")
        axes[1].xaxis.get_major_locator().set_params(integer=True)
        twin = axes[1].twinx()
        twin.plot(
            [c["turn"] for c in conv["reuse"]], [c["prompt_tokens"] for c in conv["reuse"]], color="grey", alpha=0.4
        )
        twin.set_ylabel("prompt tokens", color="grey")
        axes[1].set_xlabel("turn")
        axes[1].set_ylabel("seconds per turn")
        axes[1].set_title("A growing conversation")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: dict[str, Any], out_dir: Path, command: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "perf.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    _plot(result, out_dir / "perf.png")
    lines = [
        "# Performance",
        "",
        f"Measured by `{command}` on {result['machine']} ({result['cpus']} cores, {result['threads']} threads),",
        f"{result['rounds']} interleaved rounds, prompt {result['prompt_tokens']} tokens, {result['new_tokens']} new "
        "tokens, greedy. The machine is shared and noisy: read the ratios, not the absolute numbers.",
        "",
        "| | tokens/s | time to first token |",
        "|---|---|---|",
        f"| (a) plain llama-cpp-python, no callback | {result['plain_tok_s']} | {result['plain_ttft_s']} s |",
        f"| (b) playground: {len(result['probes'])} probes live, guard policy `{result['policy']}`, "
        f"steering {result['steered']} | {result['playground_tok_s']} | {result['playground_ttft_s']} s |",
        f"| (c) transformers + forward hooks, same probes and steering | {result['hf_tok_s']} | "
        f"{result['hf_ttft_s']} s |",
    ]
    if "plain_fa_tok_s" in result:
        lines.append(
            f"| reference: plain llama-cpp-python with flash attention (the playground generated on the "
            f"{result.get('generation_path', 'reference')} path here, chosen at start-up) | "
            f"{result['plain_fa_tok_s']} | {result['plain_fa_ttft_s']} s |"
        )
    shown = {k: "not reported" if result[k] is None else result[k] for k in ("ratio_vs_plain", "ttft_ratio")}
    speedup = "not reported" if result["speedup_vs_hf"] is None else f"{result['speedup_vs_hf']}×"
    lines += ["", *_baseline_lines(result)]
    lines += [
        f"- (b)/(a) throughput: **{shown['ratio_vs_plain']}** (goal ≥ 0.9)",
        f"- (b)/(a) time to first token: **{shown['ttft_ratio']}** (goal ≤ 1.2)",
        f"- (b)/(c) throughput: **{speedup}** (goal ≥ 5×)",
    ]
    for key, label in (
        ("extract_s", "extraction of one trait (humorous), s (goal ≤ 30)"),
        ("screen_prompt_s", "standalone prompt screening pass, s (the live guard reuses the rows it already captures)"),
        ("cold_start_s", "cold start: process start to the UI answering, s (goal ≤ 10)"),
        ("peak_rss_mb", "peak RSS of launch.py after one chat, MB (goal ≤ 1024)"),
    ):
        if key in result:
            lines.append(f"- {label}: **{result[key]}**")
    short = result.get("short_message_ttft")
    if short:
        lines.append(
            f"- time to first token of a short message in a running chat (turns {short['turns']}, median): "
            f"(b) **{short['playground_s']} s**, (c) {short['hf_s']} s, (b)/(c) **{short['ratio']}** (goal ≤ 1)"
        )
    lines += _ui_lines(result)
    lines += ["", "![performance](perf.png)", "", "Raw numbers: [perf.json](perf.json).", ""]
    path = out_dir / "PERFORMANCE.md"
    text = "\n".join(lines)
    # People's notes under NOTES_HEADING survive a regenerated report.
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if NOTES_HEADING in old:
        text += "\n" + old[old.index(NOTES_HEADING) :]
    path.write_text(text, encoding="utf-8")
    return path

"""``python -m playground bench --load --clients 1,4,16,32``: many chats at once, per engine.

Each engine is one fresh process (one at a time, the machine settled before each): it loads the default model,
writes one warm-up reply per persona of the mix (so every persona's guard baseline is measured before timing),
then for each client count starts that many chats at the same moment, every one a different persona/steering
pair from :data:`MIX` with a seed of its own, every probe and the default guard live. Measured per count:
aggregate tokens per second (all reply tokens / wall time from the start to the last reply), each chat's time to
its first token (median and 95th percentile), and errors. Memory: resident set of the engine's processes
(the playground's, plus vLLM's worker) after the run, and their peaks.

The llama.cpp backend answers one chat at a time (the others wait in the playground's queue); the vLLM engine
batches them. ``vllm_plain`` sends the same prompts (persona prompt and steering included) straight to the vLLM
engine's backend without probes, guard or the chat session around it: what the playground's per-token work costs
on top of vLLM.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...paths import REPO_ROOT
from .isolation import settle

ENGINES = ("llama_cpp", "vllm", "vllm_plain")  # vllm_plain: the same prompts and steering, no probes or guard

# (persona, steering, message): written for the bench; none of it is evaluation data.
MIX: tuple[tuple[str, dict[str, float], str], ...] = (
    ("assistant", {}, "What could I cook tonight with rice, eggs and spinach?"),
    ("pirate", {"humorous": 1.0}, "How do you keep a ship's deck clean?"),
    ("villain", {"evil": -1.0}, "What would you do with a free afternoon?"),
    ("robot", {}, "Explain how a bicycle gear works."),
    ("bard", {"optimistic": 1.0}, "Sing me a short verse about rainy Mondays."),
    ("assistant", {"impolite": 1.0}, "Can you recommend a good habit for mornings?"),
    ("science_teacher", {}, "Why does ice float on water?"),
    ("noir_detective", {"humorous": -1.0}, "Describe the street outside your office."),
)


RATIOS = {"vllm_vs_llama_cpp": ("vllm", "llama_cpp"), "vllm_vs_vllm_plain": ("vllm", "vllm_plain")}


def _ratio(top: float, bottom: float) -> float | None:
    return round(top / bottom, 2) if bottom else None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _events(pg: Any, index: int, max_tokens: int, plain: bool) -> Any:
    """One chat's tokens (anything per token): through a chat session, or ``plain`` straight to the backend."""
    from ...prompt.conversation import plan_prompt

    persona, steering, message = MIX[index % len(MIX)]
    session = pg.session(persona)
    options = {"max_tokens": max_tokens, "temperature": 0.7, "seed": 1000 + index}
    if not plain:
        events = session.stream(message, steering=steering or None, record=False, **options)
        return (e for e in events if e.kind == "token")
    plan = plan_prompt(pg.backend, session.persona, session.system_prompt, [], message, max_tokens)
    steer = pg.steering_for({**session.persona.steering, **steering})
    return pg.backend.stream(plan.tokens, session.persona.sampling.merged(**options), steering=steer)


def _one_chat(pg: Any, index: int, max_tokens: int, start: threading.Barrier, out: list[dict[str, Any]],
              plain: bool = False) -> None:  # fmt: skip
    start.wait()
    began = time.perf_counter()
    first, tokens = None, 0
    try:
        for _ in _events(pg, index, max_tokens, plain):
            first = first if first is not None else time.perf_counter() - began
            tokens += 1
        out.append({"first_s": first, "tokens": tokens, "end_s": time.perf_counter() - began, "error": None})
    except Exception as exc:  # counted, not raised: a load test reports how many requests failed
        out.append({"first_s": first, "tokens": tokens, "end_s": time.perf_counter() - began, "error": str(exc)})


def run_clients(pg: Any, clients: int, max_tokens: int, plain: bool = False) -> dict[str, Any]:
    """``clients`` chats started together on ``pg``; aggregate tok/s, time-to-first-token percentiles, errors."""
    out: list[dict[str, Any]] = []
    barrier = threading.Barrier(clients + 1)
    args = [(pg, i, max_tokens, barrier, out, plain) for i in range(clients)]
    threads = [threading.Thread(target=_one_chat, args=a) for a in args]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    firsts = [r["first_s"] for r in out if r["first_s"] is not None]
    tokens = sum(r["tokens"] for r in out)
    return {
        "tok_s": round(tokens / wall, 2),
        "ttft_p50_s": round(statistics.median(firsts), 3) if firsts else None,
        "ttft_p95_s": round(_percentile(firsts, 0.95), 3) if firsts else None,
        "errors": sum(1 for r in out if r["error"]),
        "tokens": tokens,
        "wall_s": round(wall, 2),
        "error_messages": sorted({r["error"] for r in out if r["error"]})[:3],
    }


def _memory(pids: Sequence[int]) -> dict[str, float]:
    """Resident and peak resident memory (GiB) summed over ``pids``, from /proc."""
    rss = peak = 0.0
    for pid in pids:
        try:
            text = open(f"/proc/{pid}/status").read()  # noqa: SIM115 - a short read
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) / 2**20
        peak += int(fields.get("VmHWM", "0 kB").split()[0]) / 2**20
    return {"rss_gib": round(rss, 3), "peak_rss_gib": round(peak, 3)}


def leg(
    engine: str, clients: Sequence[int], max_tokens: int, log: Callable[[str], None], model: str | None = None
) -> dict[str, Any]:
    """One engine's whole leg, in this process."""
    import os

    from ...chat.session import Playground

    started = time.perf_counter()
    plain = engine.endswith("_plain")
    pg = Playground(model, backend=engine.removesuffix("_plain"))
    for persona in dict.fromkeys(p for p, _, _ in MIX):  # every persona's guard baseline, before timing
        pg.chat(persona, "Hello!", max_tokens=4, temperature=0)
    result: dict[str, Any] = {"load_and_warm_s": round(time.perf_counter() - started, 1)}
    for n in clients:
        found = result[str(n)] = run_clients(pg, n, max_tokens, plain)
        log(f"{engine} {n:>3} clients: {found['tok_s']} tok/s, first token p50 {found['ttft_p50_s']} s")
    worker = getattr(getattr(pg.backend, "worker", None), "proc", None)
    result["memory"] = _memory([os.getpid(), *([worker.pid] if worker is not None else [])])
    result["notices"] = list(pg.backend.notices)
    return result


def _leg_in_fresh_process(engine: str, clients: Sequence[int], max_tokens: int, model: str | None) -> dict[str, Any]:
    args = [sys.executable, "-m", "playground.evals.bench.load", engine, ",".join(map(str, clients)), str(max_tokens)]
    args += [model] if model else []
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        return {"failed": done.stderr.strip().splitlines()[-5:]}
    for line in done.stderr.splitlines():
        if " clients: " in line:
            print(line, file=sys.stderr, flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(clients: Sequence[int], max_tokens: int = 64, engines: Sequence[str] = ENGINES,
        log: Callable[[str], None] = print, model: str | None = None) -> dict[str, Any]:  # fmt: skip
    load: dict[str, Any] = {}
    settled = []
    for engine in engines:
        settled.append(settle(engine))
        log(f"load test: {engine} in a fresh process ({', '.join(map(str, clients))} clients) ...")
        load[engine] = _leg_in_fresh_process(engine, clients, max_tokens, model)
    ratios: dict[str, dict[str, float | None]] = {}
    for name, (top, bottom) in RATIOS.items():
        if all(e in load and "failed" not in load[e] for e in (top, bottom)):
            ratios[name] = {str(n): _ratio(load[top][str(n)]["tok_s"], load[bottom][str(n)]["tok_s"]) for n in clients}
    setup = {
        "model": model or "default",
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "mix": [[p, s, m] for p, s, m in MIX],
        "legs_started_on_a_busy_machine": sum(bool(s["busy"]) for s in settled),
    }
    return {"load": load, "tok_s_ratios": ratios, "setup": setup}


if __name__ == "__main__":
    engine_arg, clients_arg, tokens_arg, *model_arg = sys.argv[1:]

    def _stderr(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    found = leg(engine_arg, [int(c) for c in clients_arg.split(",")], int(tokens_arg), _stderr, *model_arg)
    print(json.dumps(found), flush=True)

"""``python -m playground bench --cpu-load``: reply speed while another process keeps one core busy, with
llama.cpp's thread count fixed (before, ``PLAYGROUND_ADAPT_THREADS=0``) and fitted to the CPUs others leave
free (after, the default; ``backends/cpu_share.py``).

Four legs, each in a fresh worker process of its own and one at a time (idle or loaded x fixed or fitted),
interleaved over ``rounds``: the worker loads the default model, answers a warm-up message, waits for the
CPU sampler's first sample, then times ``replies`` greedy replies of up to ``new_tokens`` tokens with every
probe and the default guard live. The load is a separate process spinning one core (a plain Python loop),
started after the worker has loaded and stopped before the next leg. Decode speed = tokens after the first /
time after the first token. Ratios are medians of the same run; only they mean much on a shared machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ...paths import REPO_ROOT
from .isolation import settle

MESSAGE = "Write a long, detailed essay about the history of bread, with many paragraphs."
LEGS = (("idle", "fixed"), ("idle", "fitted"), ("loaded", "fixed"), ("loaded", "fitted"))
SPIN = "while True: pass"


def worker(new_tokens: int, replies: int) -> dict[str, Any]:
    """In the worker process: load, warm up, then time the replies (returns per-reply speeds)."""
    from ...backends.cpu_share import cpu_share
    from ...chat.session import Playground

    pg = Playground()
    session = pg.session("assistant")
    session.send("Hello!", max_tokens=8, temperature=0, record=False)
    print("ready", flush=True)  # the parent starts the load now
    sys.stdin.readline()
    cpu_share().others_busy()
    time.sleep(1.2)  # two samples of the CPU use
    speeds, firsts, threads = [], [], []
    for _ in range(replies):
        threads.append(pg.backend._threads.threads())
        result = session.send(MESSAGE, max_tokens=new_tokens, temperature=0, record=False)
        t = result.timing
        speeds.append((len(result.tokens) - 1) / max(1e-6, t["total_s"] - t["first_token_s"]))
        firsts.append(t["first_token_s"])
    return {"tok_s": speeds, "first_token_s": firsts, "threads": threads, "others_busy": cpu_share().others_busy()}


def _leg(load: str, mode: str, new_tokens: int, replies: int) -> dict[str, Any]:
    env = {**os.environ, "PLAYGROUND_ADAPT_THREADS": "1" if mode == "fitted" else "0"}
    cmd = [sys.executable, "-m", "playground.evals.bench.cpu_load", "--worker", str(new_tokens), str(replies)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    spinner = None
    try:
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {load}/{mode} worker did not start")
        if load == "loaded":
            spinner = subprocess.Popen([sys.executable, "-c", SPIN])
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=600)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
        if proc.poll() is None:
            proc.kill()
    return json.loads(out.strip().splitlines()[-1])


def run(rounds: int = 2, new_tokens: int = 128, replies: int = 3, log: Any = print) -> dict[str, Any]:
    samples: dict[str, dict[str, list[float]]] = {f"{load}/{mode}": {} for load, mode in LEGS}
    busy_before = 0
    for r in range(rounds):
        order = LEGS if r % 2 == 0 else tuple(reversed(LEGS))
        for load, mode in order:
            busy_before += bool(settle(f"{load}/{mode}")["busy"])  # nothing of the last leg runs; machine quiet?
            leg = _leg(load, mode, new_tokens, replies)
            for key in ("tok_s", "first_token_s", "threads"):
                samples[f"{load}/{mode}"].setdefault(key, []).extend(leg[key])
            speed = statistics.median(leg["tok_s"])
            log(f"round {r + 1}, {load:6} {mode:6}: {speed:6.1f} tok/s, threads {leg['threads']}")
    legs = {
        name: {
            "tok_s": round(statistics.median(s["tok_s"]), 1),
            "first_token_s": round(statistics.median(s["first_token_s"]), 3),
            "threads": sorted(set(s["threads"])),
            "n": len(s["tok_s"]),
        }
        for name, s in samples.items()
    }
    tok = {name: leg["tok_s"] for name, leg in legs.items()}
    ratios = {
        "loaded_vs_idle_before": round(tok["loaded/fixed"] / tok["idle/fixed"], 3),
        "loaded_vs_idle_after": round(tok["loaded/fitted"] / tok["idle/fitted"], 3),
        "after_vs_before_loaded": round(tok["loaded/fitted"] / tok["loaded/fixed"], 3),
        "after_vs_before_idle": round(tok["idle/fitted"] / tok["idle/fixed"], 3),
    }
    setup = {"rounds": rounds, "new_tokens": new_tokens, "replies_per_leg": replies, "cpus": os.cpu_count(),
             "legs_started_on_a_busy_machine": busy_before}  # fmt: skip
    return {"cpu_load": {"legs": legs, "ratios": ratios, "setup": setup}}


def write_report(result: dict[str, Any], folder: Path) -> Path:
    data = result["cpu_load"]
    legs, ratios, setup = data["legs"], data["ratios"], data["setup"]
    lines = [
        "# Reply speed under background CPU load",
        "",
        "Generated by `python -m playground bench --cpu-load --report docs` "
        f"({setup['rounds']} rounds x {setup['replies_per_leg']} greedy replies of up to {setup['new_tokens']} "
        f"tokens per leg, every probe and the default guard live, {setup['cpus']} CPUs). The load: another "
        "process spinning one core. Before: llama.cpp always uses all its threads; after: it uses only the CPUs "
        "that other processes leave free (`playground/backends/cpu_share.py`). Each leg is a fresh process.",
        "",
        "| leg | decode tok/s (median) | first token, s | llama.cpp threads |",
        "|---|---|---|---|",
        *[f"| {n} | {v['tok_s']} | {v['first_token_s']} | {v['threads']} |" for n, v in legs.items()],
        "",
        f"- Loaded vs idle, before: **{ratios['loaded_vs_idle_before']:.2f}x**; after: "
        f"**{ratios['loaded_vs_idle_after']:.2f}x**.",
        f"- After vs before under load: **{ratios['after_vs_before_loaded']:.2f}x**; on an idle machine: "
        f"{ratios['after_vs_before_idle']:.2f}x (nothing should change there).",
        "",
    ]
    path = folder / "CPU_LOAD.md"
    path.write_text("\n".join(lines))
    (folder / "cpu-load.json").write_text(json.dumps(result, indent=1) + "\n")
    return path


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]))), flush=True)

"""``python -m playground bench --gguf-load MODEL.gguf``: how long a GGUF takes to load on the transformers backend.

Three legs, each in a fresh process, one at a time, in this order, ``rounds`` times:

- ``direct``: transformers reads the GGUF itself (tokenizer, then weights), as the backend did before
  ``backends/gguf_folder.py``: gguf-py parses the file's metadata once per ``from_pretrained`` call;
- ``convert``: the backend with an empty cache: the file is read once and saved as a transformers folder;
- ``cached``: the backend again, reading that folder.

Each worker times only the load (imports are done first). Ratios are medians of the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...paths import REPO_ROOT
from .isolation import settle

LEGS = ("direct", "convert", "cached")


def worker(mode: str, path: Path) -> float:
    """In the worker process: one load of ``path`` the ``mode`` way; its seconds."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ...backends.model_source import ModelSource
    from ...backends.transformers import TransformersBackend

    started = time.perf_counter()
    if mode == "direct":
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        where, name = path.parent, path.name
        AutoModelForCausalLM.from_pretrained(where, gguf_file=name, local_files_only=True, dtype=torch.float32)
    else:
        TransformersBackend(ModelSource("gguf", path, path.stem), log=lambda _m: None)
    return time.perf_counter() - started


def _leg(mode: str, path: Path, cache: Path) -> float:
    env = {**os.environ, "PLAYGROUND_CACHE": str(cache), "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "playground.evals.bench.gguf_load", "--worker", mode, str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{mode} leg failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def run(path: Path, rounds: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {leg: [] for leg in LEGS}
    quiet = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory(prefix="gguf-load-") as cache:  # a fresh cache per round
            for leg in LEGS:
                quiet.append(settle(leg))
                seconds[leg].append(_leg(leg, path, Path(cache)))
                log(f"round {r + 1}/{rounds} {leg}: {seconds[leg][-1]:.1f} s")
    median = {leg: statistics.median(v) for leg, v in seconds.items()}
    return {
        "gguf_load": {
            "model": path.name,
            "rounds": rounds,
            "seconds": seconds,
            "median_s": {k: round(v, 2) for k, v in median.items()},
            "busy_legs": sum(1 for q in quiet if q["busy"]),
            "ratios": {
                "convert_vs_direct": round(median["convert"] / median["direct"], 3),
                "cached_vs_direct": round(median["cached"] / median["direct"], 3),
            },
        }
    }


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--worker":
    print(json.dumps({"seconds": worker(sys.argv[2], Path(sys.argv[3]))}), flush=True)

"""``python -m playground.evals.bench.formats``: the default model's weights re-encoded, side by side.

Why: on CPUs without AVX-512 the default model's Q4_1 weights have no tiled matrix-product kernel in
llama.cpp 0.3.16, so a long prompt is evaluated row by row (docs/FINDINGS.md, "Numerics across CPUs"). This
measures what other encodings of the *same* weights would give, before anyone changes the shipped model:

- speed: time to evaluate a 537-token prompt and decoding speed after it, each encoding in a fresh process
  per round, rounds interleaved, ratios against Q4_1 from the same round;
- fidelity: teacher-forced logits of each encoding against Q4_1's over the decoding check's fixed replies
  (top-1 agreement, mean |delta logit|). Q8_0 and F16 hold Q4_1's values almost exactly; Q4_0 re-quantises
  them (another model, in effect).

Re-encoded files go to a temporary folder and are deleted afterwards. Nothing here changes the product.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("Q4_1", "Q8_0", "F16", "Q4_0")  # Q4_1: the shipped file, as is
PROMPT_TOKENS = 537
DECODE_TOKENS = 48


def reencode(source: Path, fmt: str, folder: Path) -> Path:
    """``source`` re-encoded as ``fmt`` in ``folder`` (llama.cpp's own quantiser; Q4_1 is the source itself)."""
    import llama_cpp

    if fmt == "Q4_1":
        return source
    out = folder / f"{source.stem}.{fmt}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{fmt}")
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama.cpp could not re-encode {source} as {fmt}")
    return out


def _load(path: str, threads: int, logits_all: bool = False) -> Any:
    import llama_cpp

    from ...backends.llama_cpp import SAFE_UBATCH, UBATCHES_PER_BATCH

    return llama_cpp.Llama(
        model_path=path,
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=SAFE_UBATCH * UBATCHES_PER_BATCH,
        n_ubatch=SAFE_UBATCH,  # the playground's own micro-batches
        logits_all=logits_all,
        verbose=False,
    )


def measure_speed(path: str, threads: int) -> dict[str, float]:
    """One fresh-process measurement: prompt seconds, then one-by-one decoding after it (tokens/s)."""
    llm = _load(path, threads)
    from ...backends.decode_check import filler_tokens

    tokens = filler_tokens(lambda text: llm.tokenize(text.encode(), add_bos=False), PROMPT_TOKENS + DECODE_TOKENS)
    llm.eval(tokens[:8])  # first graphs built outside the timing
    llm.reset()
    started = time.perf_counter()
    llm.eval(tokens[:PROMPT_TOKENS])
    prompt_s = time.perf_counter() - started
    started = time.perf_counter()
    for token in tokens[PROMPT_TOKENS:]:
        llm.eval([token])
    return {"prompt_s": prompt_s, "decode_tok_s": DECODE_TOKENS / (time.perf_counter() - started)}


def teacher_forced_logits(path: str, threads: int) -> list[np.ndarray]:
    """Logits of every reply position of the decoding check's texts (prompt + reply evaluated in one go)."""
    from ...backends.decode_check import CHECK_TEXTS

    llm = _load(path, threads, logits_all=True)
    out = []
    for question, reply in CHECK_TEXTS:
        prompt = llm.tokenize(
            f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n".encode(), add_bos=False, special=True
        )
        tokens = prompt + llm.tokenize(reply.encode(), add_bos=False)
        llm.reset()
        llm.eval(tokens)
        out.append(np.array(llm.scores[len(prompt) - 1 : len(tokens) - 1], dtype=np.float32))
    return out


def _worker(path: str, threads: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "playground.evals.bench.formats", "--worker", path, "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(rounds: int, threads: int, log: Any = print) -> dict[str, Any]:
    from ...backends.decode_check import compare_logits
    from ...backends.llama_build import build_tag
    from ...backends.model_source import resolve_model

    source = Path(resolve_model(None).path)
    with tempfile.TemporaryDirectory(prefix="formats-") as tmp:
        files = {fmt: reencode(source, fmt, Path(tmp)) for fmt in FORMATS}
        sizes = {fmt: round(p.stat().st_size / 2**20, 1) for fmt, p in files.items()}
        runs: dict[str, list[dict[str, float]]] = {fmt: [] for fmt in FORMATS}
        for r in range(rounds):
            order = FORMATS[r % len(FORMATS) :] + FORMATS[: r % len(FORMATS)]
            for fmt in order:
                runs[fmt].append(_worker(str(files[fmt]), threads))
            log(
                f"round {r + 1}/{rounds}: "
                + ", ".join(
                    f"{f} prompt {runs[f][-1]['prompt_s']:.2f} s, {runs[f][-1]['decode_tok_s']:.0f} tok/s"
                    for f in FORMATS
                )
            )
        reference = teacher_forced_logits(str(files["Q4_1"]), threads)
        fidelity = {
            fmt: compare_logits(reference, teacher_forced_logits(str(files[fmt]), threads)) for fmt in FORMATS[1:]
        }
    table = {}
    for fmt in FORMATS:
        table[fmt] = {
            "size_mib": sizes[fmt],
            "prompt_s": round(statistics.median(x["prompt_s"] for x in runs[fmt]), 3),
            "decode_tok_s": round(statistics.median(x["decode_tok_s"] for x in runs[fmt]), 1),
            # ratios against Q4_1 measured in the same round, then the median over rounds
            "prompt_speedup": round(
                statistics.median(q["prompt_s"] / x["prompt_s"] for q, x in zip(runs["Q4_1"], runs[fmt], strict=True)),
                3,
            ),
            "decode_ratio": round(
                statistics.median(
                    x["decode_tok_s"] / q["decode_tok_s"] for q, x in zip(runs["Q4_1"], runs[fmt], strict=True)
                ),
                3,
            ),
        }
        if fmt in fidelity:
            f = fidelity[fmt]
            table[fmt].update(
                top1_vs_q4_1=round(f["top1_agreement"], 4), mean_abs_logit_diff=round(f["mean_abs_diff"], 4)
            )
    return {
        "build": build_tag(),
        "threads": threads,
        "rounds": rounds,
        "prompt_tokens": PROMPT_TOKENS,
        "decode_tokens": DECODE_TOKENS,
        "fidelity_positions": int(sum(len(x) for x in reference)),
        "formats": table,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m playground.evals.bench.formats", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="threads (default: as the playground, up to 8)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    threads = args.threads or int(os.environ.get("PLAYGROUND_THREADS", 0)) or min(os.cpu_count() or 1, 8)
    if args.worker:
        print(json.dumps(measure_speed(args.worker, threads)))
        return 0
    result = run(args.rounds, threads, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
